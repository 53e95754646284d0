"""Hostile responses: whatever a server sends back, each check ends in a clear `fail` or `error` (one
line, never a crash, never a hang), and the key never goes to another host."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conformance.harness.checks import outcome_of
from conformance.wire.client import Api, Runtime
from conformance.report.allure import category_of
# The modules, not their functions: a check imported by name here would be collected and run by
# this session as a test of its own, against the embedded server.
from conformance.suites.generation import test_response as response_checks
from conformance.suites.streaming import test_framing as framing_checks
from conformance.config.targets import Declared, Limits, Target

KEY = "sk-hostile-test-key-0123456789"
CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def sse(*events: str) -> bytes:
    return b"".join(f"data: {e}\n\n".encode() for e in events)


class Hostile(BaseHTTPRequestHandler):
    """GET/POST /<case>/v1/...: answers as the case says."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status: int, body: bytes, content_type: str = "application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen_authorization.append(self.headers.get("Authorization"))
        case = self.path.split("/")[1]
        try:
            getattr(self, "case_" + case.replace("-", "_"))()
        except (BrokenPipeError, ConnectionResetError):
            pass

    # --- regular responses ---
    def case_malformed_json(self):
        self.send(200, b'{"id": "chatcmpl-1", "choices": [')

    def case_invalid_utf8(self):
        self.send(200, json.dumps(COMPLETION).encode().replace(b'"Hi"', b'"\xff\xfe"'))

    def case_html_200(self):
        self.send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")

    def case_empty_200(self):
        self.send(200, b"")

    def case_json_array(self):
        self.send(200, b"[]")

    def case_error_with_200(self):
        self.send(200, json.dumps({"error": {"message": "oops", "type": "server_error"}}).encode())

    def case_html_500(self):
        self.send(500, b"<html><body>Internal Server Error</body></html>", "text/html")

    def case_body_cut_short(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "5000")
        self.end_headers()
        self.wfile.write(json.dumps(COMPLETION).encode()[:50])
        self.close_connection = True

    def case_status_then_close(self):  # a proxy that lost its upstream: 200, headers, no framing, nothing
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.close_connection = True

    def case_stream_status_then_close(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.close_connection = True

    def case_fake_gzip(self):
        self.send(200, b"this is not gzip at all", extra=[("Content-Encoding", "gzip")])

    def case_huge_body(self):
        body = {**COMPLETION, "choices": [{**COMPLETION["choices"][0],
                                           "message": {"role": "assistant", "content": "a" * (50 * 1024 * 1024)}}]}
        self.send(200, json.dumps(body).encode())

    def case_never_answers(self):
        time.sleep(3)
        self.close_connection = True

    def case_reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True
        self.connection.close()

    def case_redirect_elsewhere(self):
        self.send(307, b"", extra=[("Location", f"{self.server.elsewhere}/v1/chat/completions")])

    def case_redirect_loop(self):
        self.send(307, b"", extra=[("Location", self.path)])

    # --- streams ---
    def stream(self, payload: bytes, content_type="text/event-stream", end=True):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        if end:
            self.wfile.write(b"0\r\n\r\n")

    def case_stream_truncated(self):
        self.stream(sse(json.dumps(CHUNK)) + b'data: {"id": "chatcmpl-1", "cho')

    def case_stream_invalid_utf8(self):
        self.stream(sse(json.dumps(CHUNK)).replace(b'"Hi"', b'"\xff"') + sse("[DONE]"))

    def case_stream_not_json(self):
        self.stream(sse("hello there", "[DONE]"))

    def case_stream_only_done(self):
        self.stream(sse("[DONE]"))

    def case_stream_as_html(self):
        self.stream(b"<html><body>Service Unavailable</body></html>", content_type="text/html")

    def case_stream_never_ends(self):
        self.stream(sse(json.dumps(CHUNK)), end=False)
        for _ in range(200):  # keeps talking (keep-alive comments) well past the stream deadline
            time.sleep(0.05)
            self.wfile.write(b"e\r\n: keep-alive\n\n\r\n")
            self.wfile.flush()
        self.close_connection = True

    def case_stream_stalls(self):
        self.stream(sse(json.dumps(CHUNK)), end=False)
        self.wfile.flush()
        time.sleep(3)
        self.close_connection = True

    def case_stream_dropped(self):
        self.stream(sse(json.dumps(CHUNK)), end=False)
        self.wfile.flush()
        self.case_reset()


class Elsewhere(BaseHTTPRequestHandler):
    """Another host: records what it was sent."""

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        self.server.seen_authorization.append(self.headers.get("Authorization"))
        body = json.dumps(COMPLETION).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the hostile cases drop connections on purpose, and clients hang up on them


def serve(handler) -> ThreadingHTTPServer:
    server = QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.seen_authorization = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers():
    hostile, elsewhere = serve(Hostile), serve(Elsewhere)
    # "localhost" is another origin than 127.0.0.1: a redirect there must not carry the key.
    hostile.elsewhere = f"http://localhost:{elsewhere.server_address[1]}"
    yield hostile, elsewhere
    hostile.shutdown()
    elsewhere.shutdown()


def judge(servers, case: str, check, mode: str, path: str) -> tuple[str, str, float]:
    hostile, _ = servers
    target = Target(name="hostile", base_url="unused", models=("m",), declared=Declared(),
                    limits=Limits(timeout_seconds=1.0, stream_deadline_seconds=2.0, retry_attempts=2,
                                  retry_base_seconds=0.01))
    runtime = Runtime(target, f"http://127.0.0.1:{hostile.server_address[1]}/{case}/v1", KEY)
    api = Api(runtime, model="m", mode=mode, path=path)
    started = time.monotonic()
    try:
        check(api, endpoint="chat")
        excinfo = None
    except BaseException:  # noqa: BLE001 - exactly what the plugin would see
        excinfo = pytest.ExceptionInfo.from_current()
    finally:
        runtime.close()
    outcome, message = outcome_of(excinfo)
    return outcome, message, time.monotonic() - started


REGULAR = ["malformed-json", "invalid-utf8", "html-200", "empty-200", "json-array", "error-with-200", "html-500",
           "body-cut-short", "fake-gzip", "never-answers", "reset", "redirect-elsewhere", "redirect-loop",
           "status-then-close"]
STREAMS = ["stream-truncated", "stream-invalid-utf8", "stream-not-json", "stream-only-done", "stream-as-html",
           "stream-never-ends", "stream-stalls", "stream-dropped", "stream-status-then-close"]
CASES = ([(case, response_checks.test_response_schema, "regular", path) for case in REGULAR for path in ("http", "sdk")]
         + [(case, check, "stream", path) for case in STREAMS for check in (framing_checks.test_done_terminator, framing_checks.test_chunk_schema)
            for path in ("http", "sdk")
            if not (case == "stream-only-done" and check is framing_checks.test_done_terminator)])  # that one ends well


@pytest.mark.parametrize("case, check, mode, path", CASES,
                         ids=[f"{c}-{k.__name__.removeprefix('test_')}-{p}" for c, k, _, p in CASES])
def test_a_hostile_response_is_a_clear_fail_or_error(servers, case, check, mode, path):
    outcome, message, seconds = judge(servers, case, check, mode, path)
    assert outcome in ("fail", "error"), (outcome, message)
    # One clear line; a check that judges several clauses adds one `also: ...` line per further failed clause.
    first, *more = message.strip().split("\n")
    assert first and all(line.startswith("also: ") for line in more), message
    record = {"outcome": outcome, "message": message, "observations": [], "check": "chat.response.schema",
              "feature": "chat.response"}
    assert category_of(record) != "suite error", message  # the harness understood what happened
    assert KEY not in message
    assert seconds < 30  # bounded by the timeouts and the retry budget, never a hang


def test_the_key_is_never_sent_to_another_host(servers):
    hostile, elsewhere = servers
    for path in ("http", "sdk"):
        judge(servers, "redirect-elsewhere", response_checks.test_response_schema, "regular", path)
    assert any(a == f"Bearer {KEY}" for a in hostile.seen_authorization)
    assert all(a is None or KEY not in a for a in elsewhere.seen_authorization)


@pytest.mark.parametrize("case, check, mode", [
    ("status-then-close", response_checks.test_response_schema, "regular"),
    ("stream-status-then-close", framing_checks.test_done_terminator, "stream")])
@pytest.mark.parametrize("path", ["http", "sdk"])
def test_a_body_that_never_came_is_a_transport_fault_never_a_verdict(servers, case, check, mode, path):
    """A 200 whose body never came (the connection closed after the headers) is retried and then
    `error`, on both paths: it is not the target's answer."""
    outcome, message, _ = judge(servers, case, check, mode, path)
    assert outcome == "error" and "before any body byte" in message, (outcome, message)
