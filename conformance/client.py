"""The harness a check talks to: one `Api` per check instance, both paths behind one call.

`api.create(endpoint, body)` sends `body` through the openai SDK or raw HTTP (the `path`),
streaming or not (the `mode`), and returns a `Reply` with the same normalised view for both:
status, error envelope, choices, usage, and for streams every event.  Checks hold only their
clause and oracle; capture, retries, redaction and evidence live here and in transport.py.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import time
from typing import Any

import httpx2
import openai

from .sse import StreamSyntaxError, parse_event_stream
from .targets import Target
from .transport import (
    BodyMissing,
    CapturingTransport,
    Evidence,
    Exchange,
    InfrastructureError,
    RateLimiter,
    Redactor,
    RetryPolicy,
    StreamInterrupted,
    TransientStatus,
    body_never_came,
    transient_from_response,
)

ENDPOINT_PATHS = {"chat": "/chat/completions", "completions": "/completions"}
READ_TIMEOUT_RETRIES = 1  # a request the server has not answered within the read timeout


@dataclasses.dataclass
class ChoiceView:
    index: int
    text: str
    finish_reason: str | None
    role: str | None = None
    finish_reasons_seen: int = 0  # streams: how many chunks carried a finish_reason
    roles_seen: int = 0  # streams: how many deltas carried a role
    # message.tool_calls as sent, or (streams) joined from the deltas by their index
    tool_calls: list[dict] = dataclasses.field(default_factory=list)
    function_call: dict | None = None  # the deprecated form, likewise


@dataclasses.dataclass
class StreamView:
    """What a strict reading of the raw event-stream bytes found."""

    content_type: str
    data: list[str]  # the data of each event, in order
    event_types: list[str]
    chunks: list[dict]  # the JSON chunks (events other than [DONE])
    done: bool  # a `data: [DONE]` event was seen
    events_after_done: int
    problems: list[str]  # syntax errors, non-JSON data, unterminated events


@dataclasses.dataclass
class Reply:
    endpoint: str
    mode: str
    path: str
    status: int | None
    exchange: Exchange | None
    body: Any = None  # the parsed JSON body of a regular (or error) response
    stream: StreamView | None = None
    chunks: list[dict] = dataclasses.field(default_factory=list)  # as the path parsed them
    sdk_error: str | None = None
    defect: str | None = None  # a body that could not be read at all (e.g. a false Content-Encoding)

    @property
    def ok(self) -> bool:
        return (self.status is not None and 200 <= self.status < 300 and self.sdk_error is None
                and self.defect is None)

    @property
    def error(self) -> dict | None:
        """The `error` object of OpenAI's envelope, when the body has one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"]
        return None

    @property
    def choices(self) -> list[ChoiceView]:
        if self.mode == "stream":
            return aggregate_chunks(self.endpoint, self.chunks)
        return choices_from_body(self.endpoint, self.body)

    @property
    def usage(self) -> dict | None:
        if self.mode == "stream":
            with_usage = [c["usage"] for c in self.chunks if isinstance(c.get("usage"), dict)]
            return with_usage[-1] if with_usage else None
        return self.body.get("usage") if isinstance(self.body, dict) else None

    @property
    def text(self) -> str:
        choices = self.choices
        return choices[0].text if choices else ""

    @property
    def finish_reason(self) -> str | None:
        choices = self.choices
        return choices[0].finish_reason if choices else None

    def describe(self) -> str:
        """A one-line account of the response, for messages."""
        if self.status is None:
            return "no response"
        if self.sdk_error:
            return f"HTTP {self.status}, the SDK raised {self.sdk_error}"
        if self.defect:
            return f"HTTP {self.status}, {self.defect}"
        if not self.ok:
            err = self.error
            if err:
                return f"HTTP {self.status} {err.get('message', '')!r}"
            raw = self.exchange.body[:200].decode("utf-8", "replace") if self.exchange else ""
            return f"HTTP {self.status} {raw!r}"
        return f"HTTP {self.status}"


def _content_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return ""


def choices_from_body(endpoint: str, body: Any) -> list[ChoiceView]:
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        return []
    views = []
    for position, choice in enumerate(body["choices"]):
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", position)
        if endpoint == "chat":
            message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
            calls = message.get("tool_calls")
            function_call = message.get("function_call")
            views.append(ChoiceView(index, _content_of(message), choice.get("finish_reason"), message.get("role"),
                                    tool_calls=[c for c in calls if isinstance(c, dict)] if isinstance(calls, list)
                                    else [],
                                    function_call=function_call if isinstance(function_call, dict) else None))
        else:
            text = choice.get("text") if isinstance(choice.get("text"), str) else ""
            views.append(ChoiceView(index, text, choice.get("finish_reason")))
    return views


def aggregate_chunks(endpoint: str, chunks: list[dict]) -> list[ChoiceView]:
    """Join the deltas of each choice, in order of the index they carry."""
    views: dict[int, ChoiceView] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            view = views.setdefault(index, ChoiceView(index, "", None))
            if endpoint == "chat":
                delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
                if isinstance(delta.get("content"), str):
                    view.text += delta["content"]
                if delta.get("role") is not None:
                    view.roles_seen += 1
                    view.role = view.role or delta["role"]
                _join_call_deltas(view, delta)
            elif isinstance(choice.get("text"), str):
                view.text += choice["text"]
            if choice.get("finish_reason") is not None:
                view.finish_reasons_seen += 1
                view.finish_reason = choice["finish_reason"]
    return [views[i] for i in sorted(views, key=lambda k: (not isinstance(k, int), k))]


def _join_fields(target: dict, fragment: dict) -> None:
    """id, type and name from the first fragment that has them; arguments fragments concatenated."""
    for key, value in fragment.items():
        if key == "arguments" and isinstance(value, str):
            target["arguments"] = target.get("arguments", "") + value
        elif key in ("id", "type", "name") and value is not None and target.get(key) is None:
            target[key] = value


def _join_call_deltas(view: ChoiceView, delta: dict) -> None:
    """Fold the tool-call (or function_call) fragments of one delta into the calls built so far."""
    for part in delta.get("tool_calls") or []:
        if not isinstance(part, dict):
            continue
        index = part.get("index")
        if not isinstance(index, int):  # no index: a new call when it carries an id, else the last one
            index = len(view.tool_calls) if part.get("id") or not view.tool_calls else len(view.tool_calls) - 1
        while len(view.tool_calls) <= index:
            view.tool_calls.append({})
        call = view.tool_calls[index]
        _join_fields(call, part)
        if isinstance(part.get("function"), dict):
            _join_fields(call.setdefault("function", {}), part["function"])
    if isinstance(delta.get("function_call"), dict):
        view.function_call = {} if view.function_call is None else view.function_call
        _join_fields(view.function_call, delta["function_call"])


def read_stream(exchange: Exchange) -> StreamView:
    content_type = exchange.response_headers.get("content-type", "")
    problems: list[str] = []
    try:
        parsed = parse_event_stream(exchange.reads)
        events = parsed.events
        if parsed.unterminated is not None:
            problems.append(f"the stream ends inside an event (no blank line after it): {parsed.unterminated[:120]!r}")
    except StreamSyntaxError as exc:
        events = []
        problems.append(str(exc))
    chunks: list[dict] = []
    done = False
    after_done = 0
    for number, event in enumerate(events, 1):
        if done:
            after_done += 1
            continue
        if event.data == "[DONE]":
            done = True
            continue
        try:
            value = json.loads(event.data)
        except ValueError:
            problems.append(f"event {number} is not JSON: {event.data[:120]!r}")
            continue
        if isinstance(value, dict):
            chunks.append(value)
        else:
            problems.append(f"event {number} is JSON but not an object: {event.data[:120]!r}")
    return StreamView(content_type, [e.data for e in events], [e.event for e in events], chunks, done, after_done,
                      problems)


def _require_body(exchange: Exchange) -> None:
    """A 2xx whose body never came is a cut connection, retried: never judged as the target's answer."""
    if body_never_came(exchange.status, exchange.response_headers, exchange.body):
        raise BodyMissing(f"HTTP {exchange.status} and its headers came, then the connection closed before any "
                          "body byte")


class Runtime:
    """Per-process connection to one target: shared clients, redaction, retry policy, caches."""

    def __init__(self, target: Target, base_url: str, api_key: str, timeout: float | None = None, share: int = 1,
                 shared_dir=None):
        """`share`: how many processes share the target's rate limit (pytest-xdist workers);
        `shared_dir`: where replies shared among those processes are kept (None: not shared)."""
        self.target = target
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.redactor = Redactor([api_key])
        per_minute = target.limits.requests_per_minute
        self.transport = CapturingTransport(self.redactor,
                                            limiter=RateLimiter(per_minute / max(1, share) if per_minute else None))
        self.timeout = httpx2.Timeout(timeout or target.limits.timeout_seconds, connect=15.0)
        headers = {"Accept-Encoding": "identity", **dict(target.headers)}
        self.http = httpx2.Client(transport=self.transport, timeout=self.timeout, headers=headers,
                                  follow_redirects=False)
        limits = target.limits
        self.retry = RetryPolicy(attempts=limits.retry_attempts, max_delay=limits.retry_max_delay_seconds,
                                 base=limits.retry_base_seconds)
        self.cache: dict[Any, Any] = {}
        from .shared import SharedReplies  # it imports Reply from here

        self.shared = SharedReplies(shared_dir)
        self._sdk_clients: dict[str, openai.OpenAI] = {}

    def sdk(self, api_key: str | None = None) -> openai.OpenAI:
        key = api_key or self.api_key
        if key not in self._sdk_clients:
            self._sdk_clients[key] = openai.OpenAI(
                base_url=self.base_url, api_key=key, http_client=self.http, max_retries=0, timeout=self.timeout,
            )
        return self._sdk_clients[key]

    def close(self) -> None:
        self.http.close()


@functools.cache
def _parameters_of(function) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def _split_sdk_kwargs(method, body: dict) -> tuple[dict, dict]:
    # The signature of the SDK's method, read once (inspect costs as much as the request here).
    accepted = _parameters_of(getattr(method, "__func__", method))
    known = {k: v for k, v in body.items() if k in accepted}
    extra = {k: v for k, v in body.items() if k not in accepted}
    return known, extra


class Api:
    """What a check uses: bound to one target, model, mode and path; records its evidence."""

    def __init__(self, runtime: Runtime, model: str, mode: str = "regular", path: str = "http"):
        self.runtime = runtime
        self.model = model
        self.mode = mode
        self.path = path
        self.evidence = Evidence()
        self.observations: list[dict] = []
        self.notes: list[str] = []

    @property
    def target(self) -> Target:
        return self.runtime.target

    # --- evidence -------------------------------------------------------------------------
    def observe(self, endpoint: str, parameter: str, verdict: str, note: str = "") -> None:
        """Record a parameter verdict (honoured / ignored / rejected / broken) seen by this check."""
        self.observations.append({"endpoint": endpoint, "parameter": parameter, "verdict": verdict, "note": note})

    def _recording(self):
        self.runtime.transport.evidence = self.evidence
        return self.evidence

    def adopt(self, reply: Reply) -> Reply:
        """Attach a reply recorded elsewhere (e.g. a cached baseline) to this check's evidence."""
        if reply.exchange is not None and reply.exchange not in self.evidence.exchanges:
            self.evidence.exchanges.append(reply.exchange)
            self.evidence.adopted += 1
        return reply

    # --- requests -------------------------------------------------------------------------
    def create(self, endpoint: str, body: dict, *, mode: str | None = None, path: str | None = None,
               model: str | None = None, api_key: str | None = None) -> Reply:
        """Send a chat or completions request; `model` and `stream` are filled in unless given.

        `api_key` replaces the target's key (for authentication checks); it is redacted too.
        """
        mode = mode or self.mode
        path = path or self.path
        full = {"model": model or self.model, **body}
        if mode == "stream" and "stream" not in body:
            full["stream"] = True
        self._recording()
        if api_key:
            self.runtime.redactor.add(api_key)
        if path == "sdk":
            return self._retrying(lambda: self._create_sdk(endpoint, full, mode, api_key))
        return self._retrying(lambda: self._create_http(endpoint, full, mode, api_key))

    def send_raw(self, method: str, url_path: str, *, content: bytes | None = None,
                 api_key: str | None = None, authorise: bool = True) -> Reply:
        """A raw HTTP request (for malformed bodies and authentication checks); JSON reply expected."""
        self._recording()
        headers = {"Content-Type": "application/json"}
        if authorise:
            headers["Authorization"] = f"Bearer {api_key or self.runtime.api_key}"
        if api_key:
            self.runtime.redactor.add(api_key)

        def call() -> Reply:
            response = self._send(method, url_path, content, headers)
            return self._regular_reply("raw", "regular", "http", response)

        return self._retrying(call)

    def _send(self, method: str, url_path: str, content: bytes | None, headers: dict) -> httpx2.Response:
        request = self.runtime.http.build_request(method, self.runtime.base_url + url_path, content=content,
                                                  headers=headers)
        response = self.runtime.http.send(request, stream=True)
        transient = transient_from_response(response.status_code, response.headers)
        if transient is not None:
            response.read()
            response.close()
            raise transient
        return response

    def _retrying(self, call):
        read_timeouts = []

        def is_transient(exc: BaseException) -> bool:
            if isinstance(exc, (httpx2.ReadTimeout, openai.APITimeoutError)):
                # No answer yet after the read timeout: the server is most likely still working on it
                # (or queueing it). Each retry would add one more request to its queue, so one only.
                read_timeouts.append(exc)
                return len(read_timeouts) <= READ_TIMEOUT_RETRIES
            if isinstance(exc, (TransientStatus, StreamInterrupted, BodyMissing, httpx2.TransportError)):
                return True
            if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
                return True
            return isinstance(exc, openai.APIStatusError) and exc.status_code in (408, 429, 502, 503, 504)

        def retry_after(exc: BaseException) -> float | None:
            if isinstance(exc, TransientStatus):
                return exc.retry_after
            if isinstance(exc, openai.APIStatusError):
                t = transient_from_response(exc.status_code, exc.response.headers)
                return t.retry_after if t else None
            return None

        try:
            return self.runtime.retry.run(call, is_transient, retry_after, self.evidence)
        except (TransientStatus, StreamInterrupted, BodyMissing, httpx2.TransportError, openai.APIConnectionError,
                openai.APITimeoutError) as exc:
            if read_timeouts and exc is read_timeouts[-1]:
                raise InfrastructureError(
                    f"no answer within the read timeout ({self.runtime.timeout.read:g}s), {len(read_timeouts)} "
                    "times: the target may be busy or answer one request at a time (lower [limits] concurrency "
                    "or raise timeout_seconds in the target file)", connection=True) from None
            raise InfrastructureError(
                f"the target could not be reached or kept failing after {self.runtime.retry.attempts} attempts: "
                f"{self.runtime.redactor.text(str(exc) or type(exc).__name__)}",
                connection=not isinstance(exc, TransientStatus)) from None
        except openai.APIStatusError as exc:
            if exc.status_code in (408, 429, 502, 503, 504):
                raise InfrastructureError(f"HTTP {exc.status_code} persisted through the retry budget") from None
            raise

    def _regular_reply(self, endpoint: str, mode: str, path: str, response: httpx2.Response) -> Reply:
        try:
            response.read()
        except httpx2.DecodingError as exc:
            response.close()
            return Reply(endpoint, mode, path, response.status_code, self.evidence.exchanges[-1],
                         defect=f"a body that cannot be decoded as its Content-Encoding says ({exc})")
        response.close()
        exchange = self.evidence.exchanges[-1]
        _require_body(exchange)
        body: Any = None
        try:
            body = json.loads(exchange.body) if exchange.body else None
        except ValueError:
            body = None
        return Reply(endpoint, mode, path, response.status_code, exchange, body=body)

    def _create_http(self, endpoint: str, body: dict, mode: str, api_key: str | None) -> Reply:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key or self.runtime.api_key}"}
        response = self._send("POST", ENDPOINT_PATHS[endpoint], json.dumps(body).encode(), headers)
        exchange = self.evidence.exchanges[-1]
        if mode != "stream" or response.status_code >= 400:
            return self._regular_reply(endpoint, "regular" if response.status_code >= 400 else mode, "http", response)
        started = time.monotonic()
        deadline = self.runtime.target.limits.stream_deadline_seconds
        try:
            for _ in response.iter_raw():
                if time.monotonic() - started > deadline:
                    raise TimeoutError(f"it was still going after {deadline:g}s (the target's stream deadline)")
        except TimeoutError as exc:  # it kept sending and never ended: the server's fault, not a transient
            response.close()
            view = read_stream(exchange)
            view.problems.append(f"the stream did not end: {exc}")
            return Reply(endpoint, mode, "http", response.status_code, exchange, stream=view, chunks=view.chunks)
        except httpx2.TransportError as exc:  # stalled (read timeout) or dropped: retried as a whole
            response.close()
            raise StreamInterrupted(f"the stream stalled or broke: {type(exc).__name__}") from None
        response.close()
        _require_body(exchange)
        view = read_stream(exchange)
        body_json = None
        if not view.data and exchange.body:
            try:
                body_json = json.loads(exchange.body)
            except ValueError:
                pass
        return Reply(endpoint, mode, "http", response.status_code, exchange, body=body_json, stream=view,
                     chunks=view.chunks)

    def _create_sdk(self, endpoint: str, body: dict, mode: str, api_key: str | None) -> Reply:
        client = self.runtime.sdk(api_key)
        resource = client.chat.completions if endpoint == "chat" else client.completions
        known, extra = _split_sdk_kwargs(resource.create, body)
        if extra:
            known["extra_body"] = extra
        start = len(self.evidence.exchanges)
        try:
            result = resource.create(**known)
        except openai.APIStatusError as exc:
            transient = transient_from_response(exc.status_code, exc.response.headers)
            if transient is not None:
                raise transient from None
            exchange = self.evidence.exchanges[-1]
            try:
                parsed = json.loads(exchange.body)
            except ValueError:
                parsed = None
            return Reply(endpoint, "regular", "sdk", exc.status_code, exchange, body=parsed)
        except (openai.APIResponseValidationError, httpx2.DecodingError, ValueError, TypeError) as exc:
            exchange = self.evidence.exchanges[-1] if len(self.evidence.exchanges) > start else None
            if exchange is not None:
                _require_body(exchange)
            return Reply(endpoint, mode, "sdk", exchange.status if exchange else None, exchange,
                         sdk_error=f"{type(exc).__name__}: {exc}")
        exchange = self.evidence.exchanges[-1]
        if mode != "stream":
            _require_body(exchange)
            try:
                parsed = json.loads(exchange.body)
            except ValueError:
                parsed = None
            sdk_body = result.to_dict() if hasattr(result, "to_dict") else None
            reply = Reply(endpoint, mode, "sdk", exchange.status, exchange, body=parsed)
            if not isinstance(parsed, dict) or sdk_body is None:
                reply.sdk_error = "the SDK returned a response that is not a JSON object"
            return reply
        chunks: list[dict] = []
        sdk_error = None
        started = time.monotonic()
        deadline = self.runtime.target.limits.stream_deadline_seconds
        try:
            for chunk in result:
                chunks.append(chunk.to_dict())
                if time.monotonic() - started > deadline:
                    sdk_error = f"the stream was still going after {deadline:g}s (the target's stream deadline)"
                    break
        except (httpx2.TransportError, openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise StreamInterrupted(f"the stream stalled or broke: {type(exc).__name__}") from None
        except Exception as exc:  # noqa: BLE001 - whatever else the SDK raises mid-stream is the finding
            sdk_error = f"{type(exc).__name__}: {self.runtime.redactor.text(str(exc))[:300]}"
        finally:
            result.close()
        _require_body(exchange)
        view = read_stream(exchange)
        return Reply(endpoint, mode, "sdk", exchange.status, exchange, stream=view, chunks=chunks,
                     sdk_error=sdk_error)

    def list_models(self, *, api_key: str | None = None) -> Reply:
        return self._models_call(None, api_key)

    def retrieve_model(self, model_id: str, *, api_key: str | None = None) -> Reply:
        return self._models_call(model_id, api_key)

    def _models_call(self, model_id: str | None, api_key: str | None) -> Reply:
        url_path = "/models" if model_id is None else f"/models/{model_id}"
        if self.path == "http":
            return self.send_raw("GET", url_path, api_key=api_key)
        self._recording()
        if api_key:
            self.runtime.redactor.add(api_key)
        client = self.runtime.sdk(api_key)

        def call() -> Reply:
            try:
                if model_id is None:
                    client.models.list()
                else:
                    client.models.retrieve(model_id)
                sdk_error = None
                status = self.evidence.exchanges[-1].status
            except openai.APIStatusError as exc:
                transient = transient_from_response(exc.status_code, exc.response.headers)
                if transient is not None:
                    raise transient from None
                status, sdk_error = exc.status_code, None
            except (openai.APIResponseValidationError, httpx2.DecodingError, ValueError, TypeError) as exc:
                status, sdk_error = self.evidence.exchanges[-1].status, f"{type(exc).__name__}: {exc}"
            exchange = self.evidence.exchanges[-1]
            _require_body(exchange)
            try:
                parsed = json.loads(exchange.body)
            except ValueError:
                parsed = None
            return Reply("models", "regular", "sdk", status, exchange, body=parsed, sdk_error=sdk_error)

        return self._retrying(call)
