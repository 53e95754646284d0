"""A server that answers one request at a time: the run measures it and sends one at a time, and a
request the server has not answered in time is retried once, never into a storm."""

import json
import tomllib
from pathlib import Path

import pytest

from conformance.wire.concurrency import measure
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


def serial_target(tmp_path: Path, url: str) -> Path:
    """A live target whose file does not say how many requests it serves at once."""
    declared = tomllib.loads((ROOT / "targets" / "reference.toml").read_text())["declared"]
    path = tmp_path / "serial.toml"
    path.write_text(
        f'name = "serial"\nbase_url = "{url}"\napi_key_env = "SERIAL_KEY"\nmodels = ["ref-small"]\n'
        "[limits]\ntimeout_seconds = 1.5\nretry_base_seconds = 0.05\ncontext_tokens = 4096\n"
        f"[declared]\nparameters = {json.dumps(declared['parameters'])}\n"
        f"extensions = {json.dumps(declared['extensions'])}\nunsupported = {json.dumps(declared['unsupported'])}\n")
    return path


def run(tmp_path: Path, server_url: str, *options: str):
    checks = [a for c in CHECKS for a in ("--check", c)]
    return run_cli("run", "--target", str(serial_target(tmp_path, server_url)), "--report-dir", "run",
                   "--no-history", *checks, *options, cwd=tmp_path, env={"SERIAL_KEY": KEY}, timeout=600)


def test_the_probe_tells_a_serial_server_from_a_parallel_one(serial_server):
    server, _ = serial_server
    serial = measure(server.base_url, KEY, "ref-small", wanted=4)
    assert serial is not None and serial.slots == 1, serial
    with ReferenceServer(api_key=KEY, models=("ref-small",), latency=SECONDS_A_REQUEST) as parallel_server:
        parallel = measure(parallel_server.base_url, KEY, "ref-small", wanted=4)
    assert parallel is not None and parallel.slots >= 3, parallel


def test_a_run_against_a_serial_server_finishes_without_errors(serial_server, tmp_path):
    server, _ = serial_server
    result = run(tmp_path, server.base_url)  # -n auto: the suite chooses
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "serves about 1 at a time, so 1 worker(s)" in result.stdout
    outcomes = {r["outcome"] for r in records(tmp_path / "run")}
    assert outcomes == {"pass"}, outcomes


def test_four_workers_on_a_serial_server_time_out_but_retry_each_request_once_only(serial_server, tmp_path):
    """What the probe prevents, and the bound on what a timeout costs when it happens anyway."""
    server, log = serial_server
    result = run(tmp_path, server.base_url, "-n", "4")
    errors = [r for r in records(tmp_path / "run") if r["outcome"] == "error"]
    assert errors, "four requests queued on a one-at-a-time server should have waited past the read timeout"
    assert all("one request at a time" in r["message"] for r in errors), [r["message"] for r in errors][:3]
    assert result.returncode == 3
    # A request that timed out was sent twice at most: never a second retry of a read timeout.
    for r in records(tmp_path / "run"):
        retries = json.loads((tmp_path / "run" / r["evidence_file"]).read_text())["evidence"]["retries"]
        timed_out = [line for line in retries if "timed out" in line.lower()]
        assert not [line for line in timed_out if not line.startswith("attempt 1 failed")], timed_out
