"""Live-target trouble: injected faults give the clean run's verdicts, retries are bounded and honour
Retry-After, the rate limit spaces requests, and a failure a parameter causes is a finding."""

import json
import tomllib
from pathlib import Path

import pytest

from conformance.server.faults import FaultSpecError, parse_faults
from conformance.wire.transport import Evidence, RateLimiter, RetryPolicy, TransientStatus
from test_full_run import records, run_cli

ROOT = Path(__file__).resolve().parents[1]
FAULTS = "429=0.2,503=0.1,reset=0.05,cut=0.03,stall=0.02"


def short_fused_target(tmp_path: Path) -> Path:
    """The reference target with short timeouts and backoff, so that stalls and retries cost little."""
    reference = tomllib.loads((ROOT / "targets" / "reference.toml").read_text())
    declared = reference["declared"]
    path = tmp_path / "faulty.toml"
    path.write_text(
        'name = "reference-faults"\nembedded = true\nmodels = ["ref-small", "ref-large"]\n'
        "[limits]\ncontext_tokens = 4096\nconcurrency = 8\ntimeout_seconds = 1.5\nstream_deadline_seconds = 60\n"
        "retry_base_seconds = 0.05\n"
        f"[declared]\nendpoints = {json.dumps(declared['endpoints'])}\nmodes = {json.dumps(declared['modes'])}\n"
        f"parameters = {json.dumps(declared['parameters'])}\nextensions = {json.dumps(declared['extensions'])}\n"
        f"unsupported = {json.dumps(declared['unsupported'])}\n")
    return path


def test_a_run_through_faults_gives_the_verdicts_of_a_clean_run(tmp_path):
    target = short_fused_target(tmp_path)
    clean = run_cli("run", "--target", str(target), "--report-dir", "clean", "--no-history", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout[-2000:]
    faulty = run_cli("run", "--target", str(target), "--report-dir", "faulty", "--no-history", "--",
                     "--server-faults", FAULTS, "--server-fault-seed", "7", cwd=tmp_path, timeout=1200)
    assert faulty.returncode in (0, 3), faulty.stdout[-2000:]  # 3: some instances ran out of retries
    injected = json.loads((tmp_path / "faulty" / "faults.json").read_text())["injected"]
    assert all(injected[kind] > 0 for kind in ("429", "503", "reset", "cut", "stall")), injected
    before = {r["nodeid"]: r for r in records(tmp_path / "clean")}
    after = {r["nodeid"]: r for r in records(tmp_path / "faulty")}
    assert before.keys() == after.keys()
    misclassified = [(node, before[node]["outcome"], r["outcome"], r["message"][:120]) for node, r in after.items()
                     if r["outcome"] not in (before[node]["outcome"], "error")]
    assert misclassified == []
    errors = [r for r in after.values() if r["outcome"] == "error"]
    assert len(errors) < 0.03 * len(after) and all(r["category"] == "infrastructure" for r in errors)
    matrix = json.loads((tmp_path / "faulty" / "matrix.json").read_text())
    assert matrix["summary"]["retries"] > sum(injected.values()) * 0.8  # every fault was retried and recorded
    clean_verdicts = json.loads((tmp_path / "clean" / "matrix.json").read_text())["parameters"]
    for row, clean_row in zip(matrix["parameters"], clean_verdicts):
        for model, cell in row["models"].items():
            assert cell["verdict"] in (clean_row["models"][model]["verdict"], "not measured"), (row["parameter"], cell)


def test_a_connection_dropped_whenever_a_parameter_is_sent_is_a_finding(tmp_path):
    result = run_cli("run", "--target", str(short_fused_target(tmp_path)), "--report-dir", "run", "--no-history",
                     "-k", "seed_reproducible", "--", "--server-quirk", "seed-drops-connection", cwd=tmp_path)
    assert result.returncode == 1
    recs = records(tmp_path / "run")
    assert recs and all(r["outcome"] == "fail" and r["category"] == "parameter breaks the server" for r in recs)
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    seed = next(p for p in matrix["parameters"] if p["endpoint"] == "chat" and p["parameter"] == "seed")
    assert {c["verdict"] for c in seed["models"].values()} == {"broken"}


@pytest.mark.parametrize("spec, problem", [
    ("429", "is not KIND=RATE"), ("teapot=0.1", "is not KIND=RATE"), ("429=lots", "not a number"),
    ("503=1.5", "between 0 and 1"), ("429=0.6,503=0.6", "more than 1"),
])
def test_fault_specs_are_checked(spec, problem):
    with pytest.raises(FaultSpecError, match=problem):
        parse_faults(spec)


def test_a_bad_fault_spec_is_one_line_and_exit_2(tmp_path):
    result = run_cli("serve", "--faults", "teapot=1", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "teapot=1" in result.stderr


def test_faults_are_drawn_at_their_rates_from_the_seed():
    draws = [parse_faults(FAULTS, seed=3).draw() for _ in range(1)]
    faults = parse_faults(FAULTS, seed=3)
    sample = [faults.draw() for _ in range(20000)]
    again = parse_faults(FAULTS, seed=3)
    assert [again.draw() for _ in range(20000)] == sample and draws[0] == sample[0]
    assert abs(sample.count("429") / 20000 - 0.2) < 0.015 and abs(sample.count("stall") / 20000 - 0.02) < 0.005


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_rate_limit_spaces_request_starts(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("conformance.wire.transport.time", clock)
    limiter = RateLimiter(per_minute=120)  # one request every 0.5 s
    starts = []
    for _ in range(5):
        limiter.wait()
        starts.append(clock.now)
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:])] == [0.5] * 4
    assert RateLimiter(None).interval == 0


def test_retries_honour_retry_after_within_the_budget(monkeypatch):
    sleeps = []
    monkeypatch.setattr("tenacity.nap.time.sleep", sleeps.append)
    evidence = Evidence()
    calls = iter([TransientStatus(429, 2.5), TransientStatus(503, None), TransientStatus(429, 100.0), "ok"])

    def call():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    policy = RetryPolicy(attempts=5, max_delay=10.0, base=0.5)
    assert policy.run(call, lambda e: isinstance(e, TransientStatus), lambda e: e.retry_after, evidence) == "ok"
    assert sleeps == [2.5, 1.0, 6.5]  # Retry-After, then backoff (0.5 doubled), then what is left of 10 s
    assert len(evidence.retries) == 3 and "retrying in 2.5s" in evidence.retries[0]


def test_retries_stop_after_the_attempts():
    evidence = Evidence()

    def call():
        raise TransientStatus(503, 0.0)

    with pytest.raises(TransientStatus):
        RetryPolicy(attempts=3, base=0.0).run(call, lambda e: True, lambda e: e.retry_after, evidence)
    assert len(evidence.retries) == 2
