"""One httpx2 transport for both paths (the openai SDK and raw HTTP): capture, redaction, retries.

Every request and response that crosses the transport is recorded, after redaction, as an
`Exchange` on the current `Evidence`; streamed bodies are recorded as the reads they arrived
in, so the strict event-stream parser sees exactly what the SDK saw.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import json
import threading
import time
from typing import Any, Callable, Iterator

import httpx2
import tenacity

from .reuse import Answer, AnswerStore, Question, ReplayStream, question
from .watch import StreamWatch

TRANSIENT_STATUS = frozenset({408, 429, 502, 503, 504})
MAX_RECORDED_BODY = 512 * 1024
REDACTED = "[REDACTED]"
SENSITIVE_HEADERS = ("authorization", "api-key", "x-api-key", "openai-organization", "cookie", "set-cookie")


class InfrastructureError(Exception):
    """The target could not be reached or judged (not a conformance finding).

    `connection`: the last attempt failed at the connection (reset, timeout, stall), not with an
    HTTP status; only such a failure can be pinned on a parameter (see oracles.send_judged).
    """

    def __init__(self, message: str, connection: bool = False):
        super().__init__(message)
        self.connection = connection


class StreamInterrupted(Exception):
    """The connection stalled or broke in the middle of an event stream: transient, retried whole.
    `stalled`: no byte came for the read timeout (the target may be busy), not a broken connection."""

    def __init__(self, message: str, stalled: bool = False):
        super().__init__(message)
        self.stalled = stalled


class TargetWedged(Exception):
    """A request kept the target busy long after the suite gave up on it (a generation that ran on, a
    stream silent for minutes): a finding about that request (outcome `fail`), reported once, and the
    same request is not sent again (client.py)."""


class BodyMissing(Exception):
    """A 2xx status line and headers, then the connection closed before any body byte, with nothing
    that said the body was empty (no Content-Length, no chunked framing): a cut connection (a proxy,
    a load balancer), never the target's answer. Transient, retried whole."""


def body_never_came(status: int | None, headers, body: bytes) -> bool:
    """Whether a response is the headers of one whose body was cut off before its first byte."""
    if status is None or not 200 <= status < 300 or body:
        return False
    names = {k.lower() for k in headers}
    return "content-length" not in names and "transfer-encoding" not in names


class TransientStatus(Exception):
    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class Redactor:
    """Replaces every secret (and the Bearer header) in recorded text."""

    def __init__(self, secrets: list[str] | tuple[str, ...] = ()):
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets.append(secret)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return value

    def header(self, key: str, value: str) -> str:
        if key.lower() in SENSITIVE_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} {REDACTED}".strip()
        return self.text(value)

    def headers(self, headers: httpx2.Headers | dict) -> dict[str, str]:
        return {key: self.header(key, value) for key, value in headers.items()}

    def holds_secret(self, data: bytes) -> bool:
        return any(secret.encode() in data for secret in self.secrets)


@dataclasses.dataclass
class Exchange:
    """One request and its response, redacted."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    response_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    reads: list[bytes] = dataclasses.field(default_factory=list)  # the body as it arrived
    transport_error: str | None = None
    elapsed_ms: float = 0.0
    body_truncated: bool = False
    reused: bool = False  # the answer another instance's identical request got (reuse.py)
    # How the request was authorised, for the pruned self-test's replay (which sends it again): "absent",
    # "key" (the run's own key), else the Authorization header as redacted ("Bearer [REDACTED]", "").
    credential: str = "absent"

    @property
    def body(self) -> bytes:
        return b"".join(self.reads)

    def record_read(self, chunk: bytes) -> None:
        if chunk:
            self.reads.append(chunk)

    def to_dict(self, redactor: Redactor) -> dict:
        """The exchange as evidence; the checks saw the whole body, the evidence keeps its first 512 KiB."""
        raw = self.body
        self.body_truncated = len(raw) > MAX_RECORDED_BODY
        body = raw[:MAX_RECORDED_BODY].decode("utf-8", errors="replace")
        return {
            "request": {"method": self.method, "url": self.url, "headers": self.request_headers,
                        "body": _pretty(self.request_body)},
            "response": {"status": self.status, "headers": self.response_headers,
                         "body": redactor.text(body), "truncated": self.body_truncated,
                         "reads": len(self.reads)},
            "transport_error": self.transport_error,
            "elapsed_ms": round(self.elapsed_ms, 1),
            **({"reused": True} if self.reused else {}),
        }


def _pretty(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return body


@dataclasses.dataclass
class Evidence:
    """Everything one check instance sent and received, plus the retries it needed."""

    exchanges: list[Exchange] = dataclasses.field(default_factory=list)
    retries: list[str] = dataclasses.field(default_factory=list)
    adopted: int = 0  # exchanges another check (or worker) sent, shown here as evidence
    answers_seen: set[str] = dataclasses.field(default_factory=set)  # ids of kept answers judged here

    @property
    def sent(self) -> int:
        return len(self.exchanges) - self.adopted


class _RecordingStream(httpx2.SyncByteStream):
    """Records each read; `on_end(whole)` is told once how the body ended: read to its end (True), or
    closed by its reader before (False; not called when the connection broke)."""

    def __init__(self, inner: httpx2.SyncByteStream, exchange: Exchange,
                 on_end: Callable[[bool], None] | None = None, watch: StreamWatch | None = None):
        self._inner = inner
        self._exchange = exchange
        self._on_end = on_end
        self._watch = watch

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._exchange.record_read(chunk)
            if self._watch is not None:
                self._watch.read(chunk)  # StoppedReading: the reader stops here (watch.py)
            yield chunk
        self._ended(True)

    def _ended(self, whole: bool) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(whole)

    def close(self) -> None:
        self._ended(False)
        self._inner.close()


class RateLimiter:
    """Spaces request starts to stay under a requests-per-minute limit (this process's share of it)."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.waited += start - now
            time.sleep(start - now)


class CapturingTransport(httpx2.BaseTransport):
    """Wraps the real transport; records each exchange on `self.evidence` after redaction, and keeps
    to the rate limit (every attempt counts, retries included). A completion request (`asking` is
    None, or "fresh" when the clause needs the target to answer now) another instance already sent
    is answered from `store`, and its answer kept there (reuse.py)."""

    def __init__(self, redactor: Redactor, inner: httpx2.BaseTransport | None = None,
                 limiter: RateLimiter | None = None, store: AnswerStore | None = None, api_key: str | None = None,
                 watching: tuple[float, float] | None = None):
        """`watching`: (stream deadline, silence) in seconds: every streamed answer is watched (watch.py)."""
        self._inner = inner or httpx2.HTTPTransport(retries=0)
        self.watching = watching
        self.redactor = redactor
        self.api_key = api_key
        self.limiter = limiter or RateLimiter(None)
        self.store = store or AnswerStore(enabled=False)
        self.evidence: Evidence = Evidence()
        self.asking: str | None = None  # "completion" or "fresh" while Api.create sends

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        asked = question(request) if self.asking and self.store.enabled else None
        if asked is not None and self.asking != "fresh" and asked.kind in self.store.kinds_sent:
            found = self.store.unseen(asked.digest, self.evidence.answers_seen, sdk=asked.sdk)
            if found is not None:
                return self._replay(request, *found)
        self.limiter.wait()
        body = request.content.decode("utf-8", errors="replace") if request.content else ""
        exchange = Exchange(
            method=request.method,
            url=self.redactor.text(str(request.url)),
            request_headers=self.redactor.headers(request.headers),
            request_body=self.redactor.text(body),
            credential=self._credential(request),
        )
        self.evidence.exchanges.append(exchange)
        started = time.monotonic()
        try:
            response = self._inner.handle_request(request)
        except httpx2.HTTPError as exc:
            exchange.transport_error = f"{type(exc).__name__}: {self.redactor.text(str(exc))}"
            raise
        finally:
            exchange.elapsed_ms = (time.monotonic() - started) * 1000
        exchange.status = response.status_code
        exchange.response_headers = self.redactor.headers(response.headers)
        on_end = None
        if asked is not None:
            headers = tuple((k, self.redactor.header(k, v)) for k, v in response.headers.multi_items())
            on_end = functools.partial(self._keep, self.evidence, asked, exchange, headers)
        watch = StreamWatch.for_request(request.content, *self.watching) if self.watching and 200 <= \
            response.status_code < 300 else None
        response.stream = _RecordingStream(response.stream, exchange, on_end, watch)
        return response

    def _credential(self, request: httpx2.Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            return "absent"
        if self.api_key and header == f"Bearer {self.api_key}":
            return "key"
        return self.redactor.header("authorization", header)

    def _replay(self, request: httpx2.Request, answer_id: str, answer: Answer) -> httpx2.Response:
        body = request.content.decode("utf-8", errors="replace") if request.content else ""
        exchange = Exchange(method=request.method, url=self.redactor.text(str(request.url)),
                            request_headers=self.redactor.headers(request.headers), request_body=self.redactor.text(body),
                            credential=self._credential(request), status=answer.status, response_headers=dict(answer.headers), elapsed_ms=answer.elapsed_ms,
                            reused=True)
        self.evidence.exchanges.append(exchange)
        self.evidence.adopted += 1
        self.evidence.answers_seen.add(answer_id)
        # Recorded as it is read, as over the wire: a reader that stops early (the SDK at an event it
        # cannot parse) leaves the same evidence as it would have live.
        return httpx2.Response(answer.status, headers=list(answer.headers), request=request,
                               stream=_RecordingStream(ReplayStream(answer.reads), exchange))

    def _keep(self, evidence: Evidence, asked: Question, exchange: Exchange, headers: tuple[tuple[str, str], ...],
              whole: bool) -> None:
        """Keep an answer for the instances that ask the same: not a 5xx, a retried status or a cut body.
        The openai SDK stops reading a stream at `data: [DONE]`: what it read is kept for SDK requests."""
        self.store.kinds_sent.add(asked.kind)  # this path has sent this endpoint and mode over the wire
        status, body = exchange.status, exchange.body
        if status is None or status >= 500 or status in TRANSIENT_STATUS or body_never_came(status, dict(headers), body):
            return
        sdk_only = not whole
        if sdk_only and not (asked.sdk and body.rstrip().endswith(b"data: [DONE]")):
            return
        answer = Answer(status, headers, tuple(exchange.reads), exchange.elapsed_ms, sdk_only)
        evidence.answers_seen.add(self.store.keep(asked.digest, answer, private=self.redactor.holds_secret(body)))

    def close(self) -> None:
        self._inner.close()


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def transient_from_response(status: int, headers: httpx2.Headers) -> TransientStatus | None:
    if status in TRANSIENT_STATUS:
        return TransientStatus(status, _retry_after_seconds(headers.get("retry-after")))
    return None


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retry transport failures and 408/429/502/503/504 only, honouring Retry-After."""

    attempts: int = 5
    max_delay: float = 30.0  # total seconds spent waiting across retries
    base: float = 0.5  # the first backoff; it doubles per attempt (Retry-After wins when given)

    def run(self, call: Callable[[], Any], is_transient: Callable[[BaseException], bool],
            retry_after: Callable[[BaseException], float | None], evidence: Evidence) -> Any:
        waited = {"total": 0.0}

        def wait(state: tenacity.RetryCallState) -> float:
            if state.attempt_number >= self.attempts:  # tenacity asks before it stops: no retry follows
                return 0.0
            exc = state.outcome.exception()
            delay = retry_after(exc)
            if delay is None:
                delay = self.base * (2 ** (state.attempt_number - 1))
            delay = min(delay, max(0.0, self.max_delay - waited["total"]))
            waited["total"] += delay
            evidence.retries.append(f"attempt {state.attempt_number} failed ({exc}); retrying in {delay:.1f}s")
            return delay

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(is_transient),
            reraise=True,
        )
        return retrying(call)
