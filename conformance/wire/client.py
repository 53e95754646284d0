"""The object a check talks to: one `Api` per check instance, both paths behind one call.

`api.create(endpoint, body)` sends `body` through the openai SDK or raw HTTP (the `path`),
streaming or not (the `mode`), and returns a `Reply` (reply.py) with the same normalised view for
both: status, error envelope, choices, usage, and for streams every event.  Checks hold only their
clause and oracle; capture, retries, redaction and evidence live here and in transport.py.
`Runtime` is the per-process part: clients, rate limit, caches, replies shared among workers.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import time
from typing import Any
from urllib.parse import urlencode

import httpx2

from ..config.targets import Target
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
    TargetWedged,
    TransientStatus,
    body_never_came,
    transient_from_response,
)

from .alone import AloneGate
from .hazards import Hazards, NotSent
from .reply import Reply, read_stream
from .reuse import AnswerStore
from .shared import SharedReplies
from .watch import StoppedReading


class _ImportedWhenUsed:
    """The openai SDK, imported at its first use: importing it is 0.6 s of CPU, and pytest-xdist starts
    no check until every worker has collected, so at -n 8 on two cores the import in each worker's
    collection kept them all waiting about 2.5 s more; a worker now pays it at its first request."""

    def __getattr__(self, name: str):
        import openai as sdk

        globals()["openai"] = sdk
        return getattr(sdk, name)


openai = _ImportedWhenUsed()
ENDPOINT_PATHS = {"chat": "/chat/completions", "completions": "/completions", "responses": "/responses"}
READ_TIMEOUT_RETRIES = 1  # a request the server has not answered within the read timeout
RECOVERY_PROMPT = "Hi"  # the one-token request that tells a target is answering again (Runtime.await_recovery)
WEDGED_AFTER_SECONDS = 3.0  # busy this long after the suite gave up a stream: that stream wedged the target


def _require_body(exchange: Exchange) -> None:
    """A 2xx whose body never came is a cut connection, retried: never judged as the target's answer."""
    if body_never_came(exchange.status, exchange.response_headers, exchange.body):
        raise BodyMissing(f"HTTP {exchange.status} and its headers came, then the connection closed before any "
                          "body byte")


def _busy(value: float, limit: float) -> str:
    """How long the target stayed busy, as the end of 'the target stayed busy ...'."""
    return f"{value:.0f}s more" if math.isfinite(value) else f"longer than its recovery_seconds ({limit:g}s)"


class Runtime:
    """Per-process connection to one target: shared clients, redaction, retry policy, caches."""

    def __init__(self, target: Target, base_url: str, api_key: str, timeout: float | None = None, share: int = 1,
                 shared_dir=None, reuse: bool = True, recovers: bool = False, confirms_alone: bool = False):
        """`share`: how many processes share the target's rate limit (pytest-xdist workers);
        `shared_dir`: where replies shared among those processes are kept (None: not shared);
        `reuse`: answer a completion request another instance already sent from its answer (reuse.py);
        `recovers`: after a timeout or a stream given up, wait until the target answers again before
        anything else is sent (a target that may serve one request at a time: `await_recovery`);
        `confirms_alone`: a failure is confirmed with no other request of the run in flight (alone.py)."""
        self.target = target
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.redactor = Redactor([api_key])
        per_minute = target.limits.requests_per_minute
        store = AnswerStore(shared_dir / "answers" if shared_dir is not None else None, enabled=reuse)
        self.timeout = httpx2.Timeout(timeout or target.limits.timeout_seconds, connect=15.0)
        self.transport = CapturingTransport(self.redactor, store=store, api_key=api_key,
                                            limiter=RateLimiter(per_minute / max(1, share) if per_minute else None),
                                            watching=(target.limits.stream_deadline_seconds, self.timeout.read))
        self.recovers = recovers
        self.share = max(1, share)  # 1: no other process sends to the target, what keeps it busy is this one's
        self.unanswered = False  # a wait for the target to answer again ran out (await_recovery)
        self.hazards = Hazards(shared_dir / "hazards" if shared_dir is not None else None)
        self.gate = AloneGate(shared_dir if confirms_alone and shared_dir is not None else None)
        headers = {"Accept-Encoding": "identity", **dict(target.headers)}
        self.http = httpx2.Client(transport=self.transport, timeout=self.timeout, headers=headers,
                                  follow_redirects=False)
        limits = target.limits
        self.retry = RetryPolicy(attempts=limits.retry_attempts, max_delay=limits.retry_max_delay_seconds,
                                 base=limits.retry_base_seconds)
        self.cache: dict[Any, Any] = {}
        self.shared = SharedReplies(shared_dir)
        self._sdk_clients: dict[str, openai.OpenAI] = {}

    def sdk(self, api_key: str | None = None) -> openai.OpenAI:
        key = api_key or self.api_key
        if key not in self._sdk_clients:
            self._sdk_clients[key] = openai.OpenAI(
                base_url=self.base_url, api_key=key, http_client=self.http, max_retries=0, timeout=self.timeout,
            )
        return self._sdk_clients[key]

    def await_recovery(self, model: str, endpoint: str) -> float | None:
        """Seconds until the target answered a one-token request (any status), sent once the suite gave a
        request up; math.inf when it did not within the target's recovery_seconds; None when this run
        does not wait (`recovers`). One request, waiting its turn in the target's queue, not a volley of
        them; a connection refused or cut is tried again after a backoff (1 s, doubling, at most 30 s)."""
        if not self.recovers:
            return None
        self.unanswered = False
        if endpoint not in ("chat", "completions"):
            endpoint = "chat" if "chat" in self.target.endpoints_for(model) else "completions"
        asked = ({"messages": [{"role": "user", "content": RECOVERY_PROMPT}]} if endpoint == "chat"
                 else {"prompt": RECOVERY_PROMPT})
        body = {"model": model, **asked, "max_tokens": 1, "temperature": 0}
        started, backoff = time.monotonic(), 1.0
        asking, self.transport.asking = self.transport.asking, None  # never answered from another's answer
        try:
            while (left := self.target.limits.recovery_seconds - (time.monotonic() - started)) > 0:
                request = self.http.build_request("POST", self.base_url + ENDPOINT_PATHS[endpoint], json=body,
                                                  headers={"Authorization": f"Bearer {self.api_key}"},
                                                  timeout=httpx2.Timeout(left, connect=min(left, 15.0)))
                try:
                    # Its status line is the answer: a body is not waited for (one that never ends would
                    # be taken for a target still busy).
                    self.http.send(request, stream=True).close()
                    return time.monotonic() - started
                except httpx2.ReadTimeout:
                    continue
                except httpx2.TransportError:
                    time.sleep(min(backoff, max(0.0, left)))
                    backoff = min(2 * backoff, 30.0)
            self.unanswered = True
            return math.inf
        finally:
            self.transport.asking = asking

    def ready(self, model: str, endpoint: str) -> None:
        """Before a request: a target that has not answered since a wait ran out (await_recovery) is waited
        for again, so that the request is not timed out, and blamed, for what another left running."""
        if self.unanswered and not math.isfinite(self.await_recovery(model, endpoint)):
            raise InfrastructureError(f"the target has not answered a one-token request for twice its recovery_seconds "
                                      f"({self.target.limits.recovery_seconds:g}s each) since a request was given up",
                                      connection=True)

    @contextlib.contextmanager
    def isolated(self):
        """Nothing answered from what other instances were answered: no reused answer, no shared or cached
        baseline (a failure confirmed alone is judged on answers given alone)."""
        kept = self.cache, self.shared, self.transport.store
        self.cache, self.shared, self.transport.store = {}, SharedReplies(None), AnswerStore(enabled=False)
        try:
            yield
        finally:
            self.cache, self.shared, self.transport.store = kept

    def close(self) -> None:
        self.http.close()
        self.gate.close()


@functools.cache
def _parameters_of(function) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def split_sdk_kwargs(method, body: dict) -> tuple[dict, dict]:
    # The signature of the SDK's method, read once (inspect costs as much as the request here).
    accepted = _parameters_of(getattr(method, "__func__", method))
    known = {k: v for k, v in body.items() if k in accepted}
    extra = {k: v for k, v in body.items() if k not in accepted}
    return known, extra


class Api:
    """What a check uses: bound to one target, model, mode and path; records its evidence."""

    def __init__(self, runtime: Runtime, model: str, mode: str = "regular", path: str = "http",
                 check_id: str = "", instance: str = ""):
        self.runtime = runtime
        self.model = model
        self.mode = mode
        self.path = path
        self.check_id = check_id  # the check this instance belongs to, and its node id: a wedge names them
        self.instance = instance
        self.confirmed_alone: dict | None = None  # how a failure seen beside other requests fared alone
        self.evidence = Evidence()
        self.observations: list[dict] = []
        self.notes: list[str] = []

    @property
    def target(self) -> Target:
        return self.runtime.target

    def restart(self) -> None:
        """Forget what the instance sent and saw, to run it again from the start."""
        self.evidence = Evidence()
        self.observations = []
        self.notes = []

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
               model: str | None = None, api_key: str | None = None, fresh: bool = False) -> Reply:
        """Send a chat or completions request; `model` and `stream` are filled in unless given.

        `api_key` replaces the target's key (for authentication checks); it is redacted too.
        The answer may be one another instance's identical request got (reuse.py), unless `fresh`:
        the clause needs the target to answer now.
        """
        mode = mode or self.mode
        path = path or self.path
        full = {"model": model or self.model, **body}
        if mode == "stream" and "stream" not in body:
            full["stream"] = True
        self._recording()
        if api_key:
            self.runtime.redactor.add(api_key)
        refusal = self.runtime.hazards.refusal(self.check_id, endpoint, full)
        if refusal is not None:
            raise NotSent(refusal)
        send = self._create_sdk if path == "sdk" else self._create_http
        self.runtime.transport.asking = "fresh" if fresh else "completion"
        try:
            with self.runtime.gate.shared():
                self.runtime.ready(self.model, endpoint)
                reply = self._retrying(lambda: send(endpoint, full, mode, api_key), endpoint)
        finally:
            self.runtime.transport.asking = None
        self.runtime.hazards.note_answer(self.check_id, endpoint, full, reply, self.instance)
        return reply

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

        endpoint = {v: k for k, v in ENDPOINT_PATHS.items()}.get(url_path, "models")
        with self.runtime.gate.shared():
            self.runtime.ready(self.model, endpoint)
            return self._retrying(call, endpoint)

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

    def _retrying(self, call, endpoint: str = "chat"):
        read_timeouts = []
        wedge: list[str] = []

        stalls = []

        def given_up(symptom: str, times: int) -> bool:
            """The target kept this request past the read timeout (`times` so far): wait until it answers
            again. Whether it was this request that kept it busy: when no other process sends (`alone`), or it
            happened again once the target was free and the target stayed busy longer than the other workers'
            requests explain, it was (`wedge`); else it is sent again, once the target is free."""
            busy = self.runtime.await_recovery(self.model, endpoint)
            # Busy for less than another read timeout: a slow answer (sent again, then `error`: raise the
            # timeout), not a wedge. Beside other workers, a queue of their requests (each answered within
            # the read timeout, or it would have timed out too) explains up to one read timeout a worker.
            read = self.runtime.timeout.read
            alone = self.runtime.share == 1
            this_one = alone or (times > 1 and busy is not None and busy > self.runtime.share * read)
            if busy is not None and busy >= max(WEDGED_AFTER_SECONDS, read) and this_one:
                wedge.append((f"{symptom}; once the suite gave up", busy))
                return False
            return True

        def is_transient(exc: BaseException) -> bool:
            if isinstance(exc, (httpx2.ReadTimeout, openai.APITimeoutError)):
                # No answer yet after the read timeout: the server is most likely still working on it
                # (or queueing it). Each retry would add one more request to its queue, so one only, and
                # only once the target answers again.
                read_timeouts.append(exc)
                return given_up(f"no answer within the read timeout ({self.runtime.timeout.read:g}s)",
                                len(read_timeouts)) and len(read_timeouts) <= READ_TIMEOUT_RETRIES
            if isinstance(exc, StreamInterrupted) and exc.stalled:
                stalls.append(exc)
                return given_up(f"the stream stalled: no byte for the read timeout ({self.runtime.timeout.read:g}s)",
                                len(stalls))
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
            if wedge:
                self._wedged(*wedge[0])
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

    def _wedged(self, what: str, busy: float) -> None:
        """This request wedged the target (`what` happened, and it stayed `busy` seconds more): the check's
        other instances will not send it again (hazards.py)."""
        self.runtime.hazards.wedged(self.check_id, self.instance)
        raise TargetWedged(f"this request wedged the target: {what}, the target stayed busy "
                           f"{_busy(busy, self.runtime.target.limits.recovery_seconds)} (a one-token request waited "
                           "that long)") from None

    def _stopped(self, endpoint: str, mode: str, path: str, exchange: Exchange, body: dict, stop: StoppedReading,
                 chunks: list[dict] | None = None) -> Reply:
        """A stream the suite stopped reading (watch.py): the reply holds what came and says why. Once a stream
        that never ended is given up, the target must answer again before anything else is sent; a target
        still busy long after was wedged by this request."""
        view = read_stream(exchange)
        if stop.kind == "runaway":
            view.problems.append(f"the stream ran on past its length limit: {stop.reason}; the suite stopped reading "
                                 "there")
        else:
            view.problems.append(f"the stream did not end: {stop.reason}")
        busy = self.runtime.await_recovery(self.model, endpoint)
        if stop.kind != "runaway" and busy is not None and busy >= WEDGED_AFTER_SECONDS:
            self._wedged(f"its stream did not end ({stop.reason}); once the suite stopped reading", busy)
        return Reply(endpoint, mode, path, exchange.status, exchange, stream=view,
                     chunks=view.chunks if chunks is None else chunks, limit_passed=stop.parameter)

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
        try:
            for _ in response.iter_raw():
                pass
        except StoppedReading as stop:  # the server's doing, not a transient (watch.py)
            response.close()
            return self._stopped(endpoint, mode, "http", exchange, body, stop)
        except httpx2.TransportError as exc:  # stalled (read timeout) or dropped: retried as a whole
            response.close()
            raise StreamInterrupted(f"the stream stalled or broke: {type(exc).__name__}",
                                    stalled=isinstance(exc, httpx2.ReadTimeout)) from None
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
        resource = {"chat": client.chat.completions, "completions": client.completions,
                    "responses": client.responses}[endpoint]
        known, extra = split_sdk_kwargs(resource.create, body)
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
        try:
            for chunk in result:
                chunks.append(chunk.to_dict())
        except StoppedReading as stop:  # the server's doing, not a transient (watch.py)
            result.close()
            return self._stopped(endpoint, mode, "sdk", exchange, body, stop, chunks)
        except (httpx2.TransportError, openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise StreamInterrupted(f"the stream stalled or broke: {type(exc).__name__}",
                                    stalled=isinstance(exc, (httpx2.ReadTimeout, openai.APITimeoutError))) from None
        except Exception as exc:  # noqa: BLE001 - whatever else the SDK raises mid-stream is the finding
            sdk_error = f"{type(exc).__name__}: {self.runtime.redactor.text(str(exc))[:300]}"
        finally:
            result.close()
        _require_body(exchange)
        view = read_stream(exchange)
        return Reply(endpoint, mode, "sdk", exchange.status, exchange, stream=view, chunks=chunks,
                     sdk_error=sdk_error)

    def stored(self, method: str, response_id: str, what: str = "", query: dict | None = None) -> Reply:
        """A stored response: GET it, DELETE it, or GET its `input_items` (`what`), through the path's
        client: the SDK's responses.retrieve / delete / input_items.list, or raw HTTP."""
        url_path = f"/responses/{response_id}" + (f"/{what}" if what else "")
        if self.path == "http":
            return self.send_raw(method, url_path + (f"?{urlencode(query)}" if query else ""))
        self._recording()
        responses = self.runtime.sdk().responses
        if what == "input_items":
            call_sdk = lambda: responses.input_items.list(response_id, **(query or {}))  # noqa: E731
        elif method == "DELETE":
            call_sdk = lambda: responses.delete(response_id)  # noqa: E731
        else:
            call_sdk = lambda: responses.retrieve(response_id)  # noqa: E731
        return self._sdk_call(call_sdk, "responses")

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
        if model_id is None:
            return self._sdk_call(lambda: client.models.list(), "models")
        return self._sdk_call(lambda: client.models.retrieve(model_id), "models")

    def _sdk_call(self, call_sdk, endpoint: str) -> Reply:
        """One SDK call that is not a completion, its answer read from the exchange it made."""
        def call() -> Reply:
            try:
                call_sdk()
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
            return Reply(endpoint, "regular", "sdk", status, exchange, body=parsed, sdk_error=sdk_error)

        with self.runtime.gate.shared():
            self.runtime.ready(self.model, endpoint)
            return self._retrying(call, endpoint)
