"""Fragile self-hosted servers (issue 27): a stream cut when another request arrives, a stream silent
until its client leaves whose generation then holds the server, a runaway generation. The reference
server reproduces each (quirks streams-interrupted, silent-with-max-completion-tokens, ignore-max_tokens);
the run finishes, blames the check that shows the deviation, and confirms alone what it saw beside its
own other requests."""

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

from conformance.server import ReferenceServer
from conformance.wire.watch import Limit, StoppedReading, StreamWatch
from test_full_run import records

ROOT = Path(__file__).resolve().parents[1]
KEY = "fragile-key"
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper who finds a map."}]


def fragile_target(tmp_path: Path, timeout: float = 3) -> Path:
    """The embedded server, with a short read timeout and no `concurrency`: what it serves at once is
    not stated, so failures seen beside other requests are confirmed alone."""
    text = (ROOT / "targets" / "reference.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("concurrency"))
    path = tmp_path / "fragile.toml"
    path.write_text(text.replace("timeout_seconds = 30", f"timeout_seconds = {timeout:g}"))
    return path


def run_suite(tmp_path: Path, *options: str, timeout: float = 3) -> tuple[int, list[dict]]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites"), "--target",
                           str(fragile_target(tmp_path, timeout)), "--report-dir", "run", "--no-history",
                           "--no-expectations", "-q", "-p", "no:cacheprovider", "--tb=no", *options],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    return done.returncode, records(tmp_path / "run")


def stream(client: httpx2.Client, url: str, max_tokens: int) -> list[bytes]:
    with client.stream("POST", url + "/chat/completions", json={"model": "ref-small", "messages": STORY,
                                                                "max_tokens": max_tokens, "stream": True}) as r:
        return list(r.iter_raw())


# --- the reference server's modes ---------------------------------------------------------------------

def test_the_interrupting_server_ends_a_running_stream_when_another_request_waits():
    with ReferenceServer(api_key=KEY, quirks=["streams-interrupted"]) as server, \
            httpx2.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        alone = b"".join(stream(client, server.base_url, 48))
        assert b'"finish_reason":"' in alone.replace(b" ", b"")
        first: list[bytes] = []
        thread = threading.Thread(target=lambda: first.extend(stream(client, server.base_url, 48)))
        thread.start()
        time.sleep(0.02)
        second = b"".join(stream(client, server.base_url, 4))
        thread.join()
        cut = b"".join(first)
        assert cut.rstrip().endswith(b"data: [DONE]")
        assert b'"finish_reason":"' not in cut.replace(b" ", b""), "the first stream was not cut"
        assert b'"finish_reason":"' in second.replace(b" ", b""), "the waiting one is served whole"


def test_the_silent_server_sends_keep_alives_until_the_client_leaves_then_stays_busy():
    body = {"model": "ref-small", "messages": STORY, "max_completion_tokens": 5, "stream": True}
    with ReferenceServer(api_key=KEY, quirks=["silent-with-max-completion-tokens"]) as server, \
            httpx2.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        with client.stream("POST", server.base_url + "/chat/completions", json=body) as response:
            reads = []
            for chunk in response.iter_raw():
                reads.append(chunk)
                if len(reads) == 3:
                    break
        assert all(read.startswith(b": keep-alive") for read in reads)
        left = time.monotonic()
        client.post(server.base_url + "/chat/completions",
                    json={"model": "ref-small", "messages": STORY, "max_tokens": 1})
        assert time.monotonic() - left > 4, "the one-token request did not wait for the abandoned generation"
        # Its regular form, and a stream without max_completion_tokens, are answered as the reference does.
        assert client.post(server.base_url + "/chat/completions",
                           json={**body, "stream": False}).json()["choices"][0]["finish_reason"] == "length"
        answered = b"".join(stream(client, server.base_url, 4))
        assert b"[DONE]" in answered and b": keep-alive" not in answered


# --- watching a stream ----------------------------------------------------------------------------------

def event(text: str, usage: dict | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def stopped(watch: StreamWatch, reads) -> StoppedReading | None:
    try:
        for read in reads:
            watch.read(read)
    except StoppedReading as stop:
        return stop
    return None


def test_a_stream_is_given_up_once_it_certainly_ran_past_its_limit():
    limit = Limit("max_tokens", 5)
    # 5 tokens: never more than 64 characters each, never more than 16 events each
    assert stopped(StreamWatch(300, 60, limit), [event("x" * 60)] * 5) is None
    stop = stopped(StreamWatch(300, 60, limit), [event("word ")] * 400)
    assert stop.kind == "runaway" and stop.parameter == "max_tokens" and "past max_tokens=5" in stop.reason
    assert stopped(StreamWatch(300, 60, limit), [event("")] * 200).kind == "runaway"  # events, no text
    assert stopped(StreamWatch(300, 60, limit), [event("a", {"completion_tokens": 6})]).reason.startswith(
        "usage.completion_tokens 6")
    # n choices and a list of prompts each have the limit; an echoed prompt is not counted as characters
    assert Limit.of({"max_tokens": 5, "n": 2, "prompt": ["a", "b"]}).total == 20
    assert Limit.of({"max_tokens": 5, "prompt": [1, 2, 3]}).total == 5
    echoed = Limit.of({"max_tokens": 1, "echo": True, "prompt": "p" * 500})
    assert stopped(StreamWatch(300, 60, echoed), [event("p" * 500)]) is None
    assert Limit.of({"max_tokens": "ten"}) is None and Limit.of({}) is None
    assert StreamWatch.for_request(b'{"stream": false, "max_tokens": 5}', 300, 60) is None


def test_a_stream_of_keep_alives_only_is_given_up_after_the_read_timeout():
    watch = StreamWatch(300, 0.2)
    watch.read(b": keep-alive\n\n")
    time.sleep(0.25)
    stop = stopped(watch, [b": keep-alive\n\n"])
    assert stop.kind == "silent" and "keep-alive comments only" in stop.reason
    lively = StreamWatch(300, 0.2)
    for _ in range(3):  # events keep coming: never silent
        time.sleep(0.1)
        lively.read(event("a"))


def test_a_limit_that_ran_to_the_context_is_not_relied_on_again(tmp_path):
    """Once a check's request bounded by max_completion_tokens was answered far past it (hundreds of tokens for
    5: the limit ignored, the answer stopped only by the model's end), the same check's streamed request
    bounded by it alone is not sent for that endpoint and model: it could run as long with its text held
    back. Its regular requests, and other checks' streams, are."""
    from conformance.config.targets import load_target
    from conformance.wire.client import Api, Runtime
    from conformance.wire.hazards import NotSent

    endless = {"messages": STORY, "max_completion_tokens": 5, "logit_bias": {"0": -100}}  # token 0: the end
    with ReferenceServer(api_key=KEY, quirks=["ignore-max_completion_tokens"]) as server:
        runtime = Runtime(load_target("reference"), server.base_url, KEY, shared_dir=tmp_path)
        check = "chat.max_completion_tokens.limits-length"
        api = Api(runtime, "ref-small", check_id=check, instance="the first instance")
        first = api.create("chat", endless)
        assert first.usage["completion_tokens"] > 256
        with pytest.raises(NotSent, match=r"max_completion_tokens is ignored on this target \(max_completion_tokens=5 "
                                          r"was answered with \d+ tokens, finish_reason 'stop', in the first"):
            Api(runtime, "ref-small", mode="stream", check_id=check).create(
                "chat", {"messages": STORY, "max_completion_tokens": 7})
        # another worker reads it from the run's folder
        other = Runtime(load_target("reference"), server.base_url, KEY, shared_dir=tmp_path)
        with pytest.raises(NotSent):
            Api(other, "ref-small", mode="stream", check_id=check).create(
                "chat", {"messages": STORY, "max_completion_tokens": 5})
        sent = [Api(other, "ref-small", check_id=check).create("chat", {"messages": STORY, "max_completion_tokens": 5}),
                Api(other, "ref-small", mode="stream", check_id=check).create(
                    "chat", {"messages": STORY, "max_completion_tokens": 5, "max_tokens": 5}),
                Api(other, "ref-small", mode="stream", check_id="another").create(
                    "chat", {"messages": STORY, "max_completion_tokens": 5}),
                Api(other, "ref-large", mode="stream", check_id=check).create(
                    "chat", {"messages": STORY, "max_completion_tokens": 5})]
        assert all(reply.status == 200 for reply in sent)
        runtime.close()
        other.close()


class OneModel(ThreadingHTTPServer):
    """One generation at a time; a request carrying max_completion_tokens keeps the model `seconds`."""

    daemon_threads = True

    def __init__(self, seconds: float):
        super().__init__(("127.0.0.1", 0), _OneModelHandler)
        self.seconds, self.model = seconds, threading.Lock()


class _OneModelHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.model:
            time.sleep(self.server.seconds if "max_completion_tokens" in body else 0)
            answer = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "length",
                                              "message": {"role": "assistant", "content": "a"}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass


def one_model_api(seconds: float):
    from conformance.config.targets import Limits, Target
    from conformance.wire.client import Api, Runtime

    server = OneModel(seconds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = Target(name="one-model", base_url="unused", models=("m",),
                    limits=Limits(timeout_seconds=1, retry_base_seconds=0.01))
    runtime = Runtime(target, f"http://127.0.0.1:{server.server_address[1]}/v1", KEY, recovers=True)
    return server, Api(runtime, "m", check_id="chat.max_completion_tokens.limits-length", instance="here")


def test_a_request_the_target_is_still_working_on_a_read_timeout_later_is_a_wedge():
    from conformance.wire.transport import TargetWedged

    server, api = one_model_api(4.5)
    with pytest.raises(TargetWedged, match=r"no answer within the read timeout \(1s\); once the suite gave up, the "
                                           r"target stayed busy [34]s more"):
        api.create("chat", {"messages": STORY, "max_completion_tokens": 5})
    assert [json.loads(e.request_body).get("max_tokens") for e in api.evidence.exchanges] == [None, 1], \
        "sent once, then only the one-token request that waited for the target"
    assert api.runtime.hazards.wedged_in("chat.max_completion_tokens.limits-length") == "here"
    server.shutdown()


def test_a_slow_answer_is_sent_again_once_the_target_is_free_and_is_no_wedge():
    from conformance.wire.transport import InfrastructureError

    server, api = one_model_api(1.5)
    with pytest.raises(InfrastructureError, match="no answer within the read timeout"):
        api.create("chat", {"messages": STORY, "max_completion_tokens": 5})
    sent = [json.loads(e.request_body).get("max_tokens") for e in api.evidence.exchanges]
    assert sent == [None, 1, None, 1], sent  # each timeout waited out before anything else was sent
    assert api.runtime.hazards.wedged_in("chat.max_completion_tokens.limits-length") is None
    server.shutdown()


# --- runs -------------------------------------------------------------------------------------------------

def test_a_request_that_wedges_the_target_is_reported_once_and_not_sent_again(tmp_path):
    code, recs = run_suite(tmp_path, "--server-quirk", "silent-with-max-completion-tokens",
                           "--check", "chat.max_completion_tokens.*", "--check", "chat.max_tokens.limits-length")
    outcomes = {(r["check"], r["dimensions"]["model"], r["dimensions"]["mode"], r["dimensions"]["path"]): r
                for r in recs}
    wedged = [r for r in recs if r["outcome"] == "fail"]
    assert len(wedged) == 1, [(r["nodeid"], r["message"]) for r in wedged]
    assert wedged[0]["message"].startswith("this request wedged the target: its stream did not end (keep-alive "
                                           "comments only")
    assert "stayed busy" in wedged[0]["message"]
    evidence = json.loads((tmp_path / "run" / wedged[0]["evidence_file"]).read_text())["evidence"]["exchanges"]
    assert [json.loads(e["request"]["body"]).get("max_tokens") if isinstance(e["request"]["body"], str) else
            e["request"]["body"].get("max_tokens") for e in evidence][-1] == 1, "the one-token request is evidence"
    key = ("chat.max_completion_tokens.limits-length", "ref-small", "stream", "http")
    assert outcomes[key] is wedged[0]
    # the check's instances after it are not sent: the stream's other path, and the other model's
    not_sent = [r for r in recs if r["outcome"] == "inconclusive"]
    assert {(r["dimensions"]["model"], r["dimensions"]["mode"], r["dimensions"]["path"]) for r in not_sent} == \
        {("ref-small", "stream", "sdk"), *(("ref-large", m, p) for m in ("regular", "stream") for p in ("http", "sdk"))}
    assert all(r["sent"] == 0 and r["message"].startswith("not sent: this check's request wedged") for r in not_sent)
    # its instances before it, and every other check, are sent and pass: the server was waited out
    assert {r["outcome"] for r in recs if r not in wedged and r not in not_sent} == {"pass"}
    assert code == 1


def test_failures_seen_beside_other_requests_are_confirmed_alone(tmp_path):
    """On a target whose concurrency is not stated, run by two workers: the interrupted streams of other
    checks pass alone; the concurrency check fails alone too, and is the one that reports it."""
    code, recs = run_suite(tmp_path, "--server-quirk", "streams-interrupted", "-n", "2",
                           "--check", "*.stream.*", "--check", "examples.*")
    failed = {r["check"] for r in recs if r["outcome"] == "fail"}
    assert failed == {"chat.stream.concurrent-streams-end", "completions.stream.concurrent-streams-end"}
    assert all(r["confirmed_alone"]["alone"] == "fail" for r in recs if r["outcome"] == "fail")
    assert "error" not in {r["outcome"] for r in recs}
    assert code == 1
    passed_alone = [r for r in recs if r.get("confirmed_alone", {}).get("alone") == "pass"]
    assert passed_alone and all(r["outcome"] == "pass" for r in passed_alone)
    page = (tmp_path / "run" / passed_alone[0]["evidence_file"]).with_suffix(".html").read_text()
    assert "run again with none in flight, it was pass" in page
    summary = json.loads((tmp_path / "run" / "matrix.json").read_text())["summary"]["confirmed_alone"]
    assert summary == {"instances": len([r for r in recs if r.get("confirmed_alone")]),
                       "passed_alone": len(passed_alone)}


def test_a_full_run_against_fragile_servers_finishes_with_no_error_and_only_failures_that_reproduce_alone(tmp_path):
    """Every check, two workers, both fragile modes at once: no `error`, the interruption and the wedge each
    reported by its own check, every failure one that reproduces alone."""
    code, recs = run_suite(tmp_path, "--server-quirk", "streams-interrupted", "--server-quirk",
                           "silent-with-max-completion-tokens", "-n", "2")
    outcomes = collections.Counter(r["outcome"] for r in recs)
    assert outcomes["error"] == 0 and outcomes["pass"] > 2000, outcomes
    failed = sorted({r["check"] for r in recs if r["outcome"] == "fail"})
    assert failed == ["chat.max_completion_tokens.limits-length", "chat.stream.concurrent-streams-end",
                      "completions.stream.concurrent-streams-end"]
    wedges = [r for r in recs if r["message"].startswith("this request wedged the target")]
    assert len(wedges) == 1
    for r in recs:
        if r["outcome"] == "fail" and r not in wedges:
            assert r["confirmed_alone"]["alone"] == "fail", r["nodeid"]
    assert code == 1
