"""The pruned self-test's argument, piece by piece (conformance/selftest/pruning.py): a request answered
without a socket is answered as over one; one seed, one answer; a quirk shows as a changed answer
exactly where it acts; a run's records list every request an outcome rests on; and an instance is
judged again when, and only when, an answer it rests on changed."""

import json
import subprocess
import sys
from pathlib import Path

import httpx2

from conformance.report.results import read_results
from conformance.selftest.pruning import Pruner, replayable
from conformance.server.offline import OfflineServer, Request
from conformance.server.quirks import registry

from conftest import TEST_KEY

QUIRKS = registry()
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper who finds a map."}]


def _chat(**fields) -> Request:
    return Request("POST", "/v1/chat/completions", "key", json.dumps({"model": "ref-small", "messages": STORY,
                                                                        "max_tokens": 12, **fields}))


def _payloads(raw: bytes) -> list:
    """The JSON the answer carries (a body, or each `data:` of a stream) without what varies: id, created."""
    text = raw.decode()
    parts = [line[6:] for line in text.splitlines() if line.startswith("data: {")] if "data: " in text else [text]
    return [{k: v for k, v in json.loads(p).items() if k not in ("id", "created")} for p in parts]


def _body(answered) -> bytes:
    head, *rest = answered.writes
    body = b"".join(rest)
    if b"Transfer-Encoding: chunked" in head:  # the chunks' sizes between the frames
        body = b"".join(part.split(b"\r\n", 1)[1][:-2] for part in rest if not part.startswith(b"0\r\n"))
    return body


def test_an_answer_without_a_socket_is_the_served_one(reference_server):
    offline = OfflineServer()
    for stream in (False, True):
        request = _chat(temperature=0, stream=stream)
        served = httpx2.post(reference_server.base_url + "/chat/completions", content=request.body,
                             headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"})
        assert served.status_code == 200
        assert _payloads(_body(offline.answer(request, "s"))) == _payloads(served.content)


def test_one_seed_one_answer_and_sampling_says_so():
    offline = OfflineServer()
    sampled, greedy = _chat(temperature=1), _chat(temperature=0)
    first = offline.answer(sampled, "a")
    assert first == offline.answer(sampled, "a") and first.sampled
    assert any(offline.answer(sampled, seed) != first for seed in "bcd")  # another seed, another sample
    assert not offline.answer(greedy, "a").sampled
    # another seed draws other ids, and greedy decoding the same text
    assert offline.answer(greedy, "a") != offline.answer(greedy, "b")
    assert _payloads(_body(offline.answer(greedy, "a"))) == _payloads(_body(offline.answer(greedy, "b")))


def test_a_quirk_changes_the_answers_it_acts_on_and_no_other():
    plain, kept = OfflineServer(), OfflineServer(["stop-kept"])
    text = json.loads(_body(plain.answer(_chat(temperature=0), "s")))["choices"][0]["message"]["content"]
    word = text.split()[3]
    with_stop, without = _chat(temperature=0, stop=[word]), _chat(temperature=0)
    assert kept.answer(with_stop, "s") != plain.answer(with_stop, "s")
    assert kept.answer(without, "s") == plain.answer(without, "s")
    # a quirk that reads the clock itself differs from the pinned time
    models = Request("GET", "/v1/models", "key", "")
    assert OfflineServer(["models-created-now"]).answer(models, "s") != plain.answer(models, "s")
    # a dropped connection is an answer of its own
    seeded = _chat(temperature=0, seed=7)
    assert OfflineServer(["seed-drops-connection"]).answer(seeded, "s").dropped


def test_a_wrong_or_missing_key_is_answered_as_it_was_sent():
    plain = OfflineServer()
    for credential, status in (("key", b" 200 "), ("Bearer [REDACTED]", b" 401 "), ("absent", b" 401 ")):
        request = Request("GET", "/v1/models", credential, "")
        assert status in plain.answer(request, "s").writes[0], credential


def _record(nodeid: str, *requests: Request, outcome: str = "pass") -> dict:
    return {"nodeid": nodeid, "outcome": outcome,
            "replay": [[r.method, r.path, r.credential, r.body] for r in requests]}


def test_an_instance_is_judged_again_when_an_answer_it_rests_on_changed():
    plain = OfflineServer()
    text = json.loads(_body(plain.answer(_chat(temperature=0), "0|x")))["choices"][0]["message"]["content"]
    with_stop = _chat(temperature=0, stop=[text.split()[2]])
    records = [_record("stop", _chat(temperature=0), with_stop), _record("plain", _chat(temperature=0)),
               _record("inconclusive", _chat(temperature=0), outcome="inconclusive"), _record("no-request")]
    pruner = Pruner(records)
    assert pruner.prune(QUIRKS["stop-kept"]).rerun == ("stop", "inconclusive")
    assert pruner.prune(QUIRKS["ignore-temperature"]).rerun == ("stop", "plain", "inconclusive")
    drift = QUIRKS["greedy-drift"]
    assert not replayable(drift) and pruner.prune(drift).rerun == ("stop", "plain", "inconclusive", "no-request")


def test_records_list_every_request_an_outcome_rests_on(tmp_path):
    """Adopted answers included: the stop checks judge a greedy baseline another instance may have sent."""
    suites = Path(__file__).resolve().parents[1] / "suites"
    done = subprocess.run([sys.executable, "-m", "pytest", str(suites), "--report-dir", str(tmp_path / "run"),
                           "--model", "ref-small", "--check", "chat.stop.excluded-from-output", "--check",
                           "auth.*", "--no-history", "--no-expectations", "-p", "no:allure_pytest",
                           "--record-requests", "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    records = read_results(tmp_path / "run")
    stop = [r for r in records if r["check"] == "chat.stop.excluded-from-output"]
    assert len(stop) > 1
    for record in stop:
        bodies = [json.loads(body) for _, _, _, body in record["replay"]]
        assert any(b.get("temperature") == 0 and "stop" not in b for b in bodies), record["nodeid"]  # the baseline
        assert any("stop" in b for b in bodies)
        assert len(record["replay"]) == len(json.loads((tmp_path / "run" / record["evidence_file"]).read_text())
                                            ["evidence"]["exchanges"])
    credentials = {c for r in records if r["check"].startswith("auth.") for _, _, c, _ in r["replay"]}
    assert {"absent", "Bearer [REDACTED]"} <= credentials


def test_a_quirk_run_past_its_time_limit_is_stopped_and_judges_nothing(tmp_path):
    """The instances a quirk changes are judged in a pytest session inside a worker process; one that
    hangs is interrupted at its time limit (as a whole run's process would be killed), and the quirk's
    run then produces no results, which the kill matrix reports as a problem."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from conformance.selftest.killmatrix import INTERRUPTED, judge_again, run_pruned, selftest_target
    from conformance.selftest.pruning import Pruned

    suites = Path(__file__).resolve().parents[1] / "suites"
    listed = subprocess.run([sys.executable, "-m", "pytest", str(suites), "--collect-only", "-q", "--model",
                             "ref-small"], capture_output=True, text=True, cwd=tmp_path).stdout.splitlines()
    nodeids = [line for line in listed if "::" in line]
    selftest_target(tmp_path)
    pruned = Pruned("keep-alive-comments", tuple(nodeids), 0, 0, len(nodeids))
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as worker:
        code, output = worker.submit(judge_again, pruned, tmp_path, "ref-small", 1).result()
    assert code == INTERRUPTED and "past its time limit" in output, output[-500:]
    run = run_pruned(pruned, (code, output), None, tmp_path)  # stopped: the baseline is not read
    assert run.outcomes == {} and "past its time limit" in run.output_tail  # problems(): "produced no results"
