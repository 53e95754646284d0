"""One answer judged by every instance that asks the same question (conformance/wire/reuse.py):
fewer requests, and never an answer an instance has already judged, a failed one, or one a path
did not read whole; end to end, the same verdicts with and without it."""

import collections
import json

import httpx2
import pytest

from conformance.config.targets import load_target
from conformance.wire.client import Api, Runtime
from test_full_run import records, run_cli

KEY = "sk-reuse-test-key-1234"
QUESTION = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4}
CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
REPLY = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


class _Reads(httpx2.SyncByteStream):
    """A body that arrives in reads, as over a socket (httpx2 reads a plain `content=` at once)."""

    def __init__(self, reads):
        self.reads = reads

    def __iter__(self):
        yield from self.reads


def respond(status: int, body: dict | None = None, reads: list[bytes] | None = None) -> httpx2.Response:
    if reads is not None:
        return httpx2.Response(status, headers={"content-type": "text/event-stream"}, stream=_Reads(reads))
    return httpx2.Response(status, headers={"content-type": "application/json"}, stream=_Reads([json.dumps(body).encode()]))


class Target:
    """A mock target that counts what reaches it; `answer(request)` gives its response."""

    def __init__(self, answer=None):
        self.seen: list[dict] = []
        self.answer = answer or self.ok

    @staticmethod
    def ok(request: httpx2.Request) -> httpx2.Response:
        if json.loads(request.content).get("stream"):
            return respond(200, reads=[f"data: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n".encode()])
        return respond(200, REPLY)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(json.loads(request.content))
        return self.answer(request)


def runtime(mock: Target, shared_dir=None, reuse: bool = True) -> Runtime:
    rt = Runtime(load_target("reference"), "http://target.test/v1", KEY, shared_dir=shared_dir, reuse=reuse)
    rt.transport._inner = httpx2.MockTransport(mock)
    return rt


def ask(rt: Runtime, path: str = "http", mode: str = "regular", times: int = 1, **options) -> Api:
    """One check instance that sends QUESTION `times` times."""
    api = Api(rt, "ref-small", mode=mode, path=path)
    for _ in range(times):
        reply = api.create("chat", QUESTION, **options)
        assert reply.status is not None
    return api


def test_an_identical_request_is_sent_once_per_path_then_answered_from_the_first_answer():
    mock = Target()
    rt = runtime(mock)
    first_http, first_sdk = ask(rt, "http"), ask(rt, "sdk")  # each path goes over the wire once
    later = [ask(rt, "http"), ask(rt, "sdk"), ask(rt, "http")]
    assert len(mock.seen) == 2
    assert first_http.evidence.sent == first_sdk.evidence.sent == 1
    for api in later:
        (exchange,) = api.evidence.exchanges
        assert api.evidence.sent == 0 and exchange.reused and exchange.to_dict(rt.redactor)["reused"] is True
        assert json.loads(exchange.body) == REPLY  # the SDK parsed it as it parses an answer off the wire


def test_an_instance_that_asks_twice_gets_two_answers_never_one_twice():
    mock = Target()
    rt = runtime(mock)
    ask(rt)
    twice = ask(rt, times=2)  # a repeatability check: the kept answer, then a new one
    assert len(mock.seen) == 2 and twice.evidence.sent == 1
    assert len({id(e.reads[0]) for e in twice.evidence.exchanges}) == 2
    third = ask(rt, times=2)  # two answers are kept by now: both judged, nothing sent
    assert len(mock.seen) == 2 and third.evidence.sent == 0


def test_fresh_and_no_reuse_send_every_request():
    mock = Target()
    rt = runtime(mock)
    ask(rt)
    ask(rt, fresh=True)
    assert len(mock.seen) == 2
    assert ask(rt, times=2).evidence.sent == 0  # a fresh answer is kept for the others all the same
    mock = Target()
    rt = runtime(mock, reuse=False)
    for _ in range(3):
        ask(rt)
    assert len(mock.seen) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_never_kept(status):
    mock = Target(lambda r: respond(status, {"error": {"message": "boom", "type": "server_error"}}))
    rt = runtime(mock)
    rt.retry = type(rt.retry)(attempts=1)
    for _ in range(3):
        try:
            ask(rt)
        except Exception:  # 503 persists through the retry budget: the run reports it, nothing is kept
            pass
    assert len(mock.seen) == 3


def test_a_refusal_is_kept_like_any_whole_answer():
    mock = Target(lambda r: respond(400, {"error": {"message": "no", "type": "invalid_request_error", "param": "n",
                                                    "code": None}}))
    rt = runtime(mock)
    for _ in range(3):
        ask(rt)
    assert len(mock.seen) == 1


def test_a_stream_the_sdk_stopped_reading_at_done_is_kept_for_the_sdk_alone():
    reads = [f"data: {json.dumps(CHUNK)}\n\n".encode(), b"data: [DONE]\n\n",
             b": after the end\n\n"]  # raw HTTP must see what follows [DONE]; the SDK stops before it

    mock = Target(lambda r: respond(200, reads=reads))
    rt = runtime(mock)
    sdk = ask(rt, "sdk", "stream")
    assert sdk.evidence.exchanges[0].body.endswith(b"[DONE]\n\n")
    raw = ask(rt, "http", "stream")  # the SDK's answer ends at [DONE]: raw HTTP is sent its own
    assert len(mock.seen) == 2 and raw.evidence.sent == 1 and raw.evidence.exchanges[0].body.endswith(b"end\n\n")
    assert ask(rt, "sdk", "stream").evidence.exchanges[0].reused
    again = ask(rt, "http", "stream")
    assert len(mock.seen) == 2 and again.evidence.exchanges[0].body.endswith(b"end\n\n")


def test_a_replayed_answer_is_recorded_as_far_as_its_reader_read_it():
    """The SDK stops at an event it cannot parse: replayed, its evidence ends where it would live."""
    reads = [f"data: {json.dumps(CHUNK)}\n\n".encode(), b'data: {"id": "broken", "choices": [\n\n',
             f"data: {json.dumps(CHUNK)}\n\n".encode(), b"data: [DONE]\n\n"]
    live = ask(runtime(Target(lambda r: respond(200, reads=reads)), reuse=False), "sdk", "stream")
    mock = Target(lambda r: respond(200, reads=reads))
    rt = runtime(mock)
    ask(rt, "http", "stream")
    ask(rt, "sdk", "stream", fresh=True)  # the SDK's own first request of the kind
    replayed = ask(rt, "sdk", "stream")
    assert len(mock.seen) == 2 and replayed.evidence.exchanges[0].reused
    assert replayed.evidence.exchanges[0].body == live.evidence.exchanges[0].body != b"".join(reads)


def test_answers_are_shared_by_the_processes_of_a_run(tmp_path):
    mock = Target()
    one, other = runtime(mock, tmp_path), runtime(mock, tmp_path)
    ask(one)
    ask(other, times=2)  # its own first answer of the kind goes over the wire, the second is the one's
    assert len(mock.seen) == 2
    assert len(list((tmp_path / "answers").glob("*.json"))) == 2


def test_an_answer_holding_a_secret_stays_in_the_memory_of_its_process(tmp_path):
    mock = Target(lambda r: respond(401, {"error": {"message": f"Incorrect API key provided: {KEY}",
                                                    "type": "invalid_request_error"}}))
    rt = runtime(mock, tmp_path)
    ask(rt)
    ask(rt)
    assert len(mock.seen) == 1
    assert not list((tmp_path / "answers").glob("*.json"))


def test_a_run_gives_the_same_verdicts_with_fewer_requests(tmp_path):
    checks = ["--check", "chat.stop.*", "--check", "completions.n.*", "--check", "chat.response.*",
              "--check", "chat.stream.*", "--check", "completions.seed.*"]
    runs = {}
    for name, options in (("reused", []), ("every", ["--no-reuse"])):
        log = tmp_path / f"{name}.jsonl"
        result = run_cli("run", "-n", "1", "--no-history", "--report-dir", name, *checks, *options, "--",
                         "--server-request-log", str(log), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        outcomes = {(r["nodeid"]): r["outcome"] for r in records(tmp_path / name)}
        runs[name] = outcomes, len(log.read_text().splitlines())
    (reused, sent_reused), (every, sent_every) = runs["reused"], runs["every"]
    assert reused == every and len(reused) > 50
    assert sent_reused < 0.7 * sent_every, (sent_reused, sent_every)
    paths = collections.Counter(r["dimensions"]["path"] for r in records(tmp_path / "reused") if r["sent"])
    assert paths["sdk"] and paths["http"]  # both paths still send
