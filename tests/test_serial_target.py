"""A server that answers one request at a time: the run measures it and sends one at a time, and a
request the server has not answered in time is retried once, never into a storm."""

import json
import threading
import time
import tomllib
from pathlib import Path

import pytest

from conformance.wire.client import RECOVERY_PROMPT
from conformance.wire.concurrency import decide, estimate, measure
from conformance.server import ReferenceServer
from test_full_run import records, run_cli

ROOT = Path(__file__).resolve().parents[1]
KEY = "serial-server-key"
SECONDS_A_REQUEST = 0.6  # the server's time to a first token; the target's read timeout is 1.5 s
CHECKS = ["chat.stop.excluded-from-output", "chat.n.choices"]


@pytest.fixture
def serial_server(tmp_path):
    log = tmp_path / "requests.jsonl"
    with ReferenceServer(api_key=KEY, models=("ref-small",), serial=True, latency=SECONDS_A_REQUEST,
                         token_latency=0.002, request_log=str(log)) as server:
        yield server, log


def serial_target(tmp_path: Path, url: str, timeout_seconds: float = 1.5) -> Path:
    """A live target whose file does not say how many requests it serves at once."""
    declared = tomllib.loads((ROOT / "targets" / "reference.toml").read_text())["declared"]
    path = tmp_path / "serial.toml"
    path.write_text(
        f'name = "serial"\nbase_url = "{url}"\napi_key_env = "SERIAL_KEY"\nmodels = ["ref-small"]\n'
        f"[limits]\ntimeout_seconds = {timeout_seconds}\nretry_base_seconds = 0.05\ncontext_tokens = 4096\n"
        f"[declared]\nparameters = {json.dumps(declared['parameters'])}\n"
        f"extensions = {json.dumps(declared['extensions'])}\nunsupported = {json.dumps(declared['unsupported'])}\n")
    return path


def run(tmp_path: Path, server_url: str, *options: str, timeout_seconds: float = 1.5):
    checks = [a for c in CHECKS for a in ("--check", c)]
    return run_cli("run", "--target", str(serial_target(tmp_path, server_url, timeout_seconds)), "--report-dir", "run",
                   "--no-history", *checks, *options, cwd=tmp_path, env={"SERIAL_KEY": KEY}, timeout=600)


def test_the_probe_tells_a_serial_server_from_a_parallel_one(serial_server):
    server, _ = serial_server
    serial = measure(server.base_url, KEY, "ref-small", wanted=4)
    assert serial is not None and serial.slots == 1, serial
    with ReferenceServer(api_key=KEY, models=("ref-small",), latency=SECONDS_A_REQUEST) as parallel_server:
        parallel = measure(parallel_server.base_url, KEY, "ref-small", wanted=4)
    assert parallel is not None and parallel.slots >= 3, parallel


def _waits_the_target_out(raw: bytes) -> bool:
    """The one-token request the suite sends before anything else once it gave a request up."""
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return (isinstance(body, dict) and body.get("max_tokens") == 1
            and body.get("messages") == [{"role": "user", "content": RECOVERY_PROMPT}])


@pytest.mark.parametrize("token_ms", [1, 5])
def test_the_probe_is_not_fooled_by_fast_tiny_requests_on_a_server_whose_generations_are_serial(token_ms):
    """Issue 27: such a server (its HTTP side concurrent, 30 ms of it a request) answers a tiny generation in
    tens of milliseconds and four at once in about twice that: "about 2 at a time", for a server that
    generates one at a time. The probe's generation stands above that overhead where the model lets it
    (5 ms a token: clearly 1); where it cannot (1 ms a token, the toy model ends of its own), the estimate
    falls between two counts and the probe takes 1."""
    with ReferenceServer(api_key=KEY, models=("ref-small",), serial=True, overhead=0.03,
                         token_latency=token_ms / 1000) as server:
        capacity = measure(server.base_url, KEY, "ref-small", wanted=8)
    assert capacity is not None and capacity.slots == 1, capacity
    assert len(capacity.together_seconds) >= 2, capacity
    line = capacity.line()
    assert "4 sent at once took" in line and "so 1 worker(s)" in line, line
    if token_ms == 5:
        assert "it serves about 1 at a time" in line, line


def test_the_probe_takes_one_worker_when_its_batches_disagree():
    assert decide(8, 4, 1.0, [1.05, 2.0]) == (1, "the batches do not agree on how many it serves at once "
                                                 "(3.8, 2.0): one at a time to be safe", False)
    assert decide(8, 4, 1.0, [2.6, 2.4])[:1] == (1,)  # 1.5, 1.7: between two counts
    assert decide(8, 4, 1.0, [2.6, 2.4])[2] is False
    assert decide(8, 4, 1.0, [4.1, 3.9])[:1] == (1,) and decide(8, 4, 1.0, [4.1, 3.9])[2]
    assert decide(8, 4, 1.0, [1.0, 1.1])[0] == 8  # all four ended together: as many as the run wants
    assert decide(8, 4, 1.0, [2.0, 2.1])[:1] == (2,)


def test_a_run_against_a_serial_server_finishes_without_errors(serial_server, tmp_path):
    server, _ = serial_server
    result = run(tmp_path, server.base_url)  # -n auto: the suite chooses
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "it serves about 1 at a time" in result.stdout and "so 1 worker(s)" in result.stdout
    outcomes = {r["outcome"] for r in records(tmp_path / "run")}
    assert outcomes == {"pass"}, outcomes


def test_four_workers_on_a_serial_server_time_out_but_retry_each_request_once_only(tmp_path):
    """What the probe prevents, and the bound on what a timeout costs when it happens anyway.

    Deterministic: the server holds the run's first generation, its turn taken, until the suite has
    given it up and sent the one-token request that waits the target out; only then is it released.
    So a read timeout happens whatever the machine's load, and every request after it is answered
    at once."""
    with ReferenceServer(api_key=KEY, models=("ref-small",), serial=True, latency=0.01, hold=1) as server:
        released = threading.Event()

        def release_once_waited_out() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not released.is_set():
                if any(_waits_the_target_out(body) for body in server.arrived()):
                    break
                time.sleep(0.05)
            server.release_held()
            released.set()

        watcher = threading.Thread(target=release_once_waited_out, daemon=True)
        watcher.start()
        result = run(tmp_path, server.base_url, "-n", "4", timeout_seconds=2)
        released.set()
        watcher.join()
    recs = records(tmp_path / "run")
    errors = [r for r in recs if r["outcome"] == "error"]
    assert all("one request at a time" in r["message"] for r in errors), [r["message"] for r in errors][:3]
    assert not [r for r in recs if r["message"].startswith("this request wedged")], "a queue is not a wedge"
    assert result.returncode in (0, 3), result.stdout[-2000:]
    timeouts = 0
    for r in recs:
        evidence = json.loads((tmp_path / "run" / r["evidence_file"]).read_text())["evidence"]
        timed_out = [line for line in evidence["retries"] if "timed out" in line.lower()]
        timeouts += len(timed_out)
        # A request that timed out was sent twice at most: never a second retry of a read timeout ...
        assert not [line for line in timed_out if not line.startswith("attempt 1 failed")], timed_out
        if timed_out:  # ... and sent again only once the server had answered a one-token request
            bodies = [e["request"]["body"] for e in evidence["exchanges"]]
            assert {"role": "user", "content": RECOVERY_PROMPT} in [m for b in bodies if isinstance(b, dict)
                                                                    for m in b.get("messages", ())], bodies
    assert timeouts, "the held request should have been given up at the read timeout"
