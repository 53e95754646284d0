"""A stopped run still leaves a report (issue 27, point 6): a run ended by a termination signal (a CI
job's time limit, `timeout`) or Ctrl-C writes what it judged as a partial run, says so first, is not
added to the history, and is compared with its expectations for unexpected failures only."""

import json
import signal
import subprocess
import sys
import time

from conformance.config.expectations import Expectation, compare
from conformance.report.model import Headline


def test_a_run_stopped_by_a_termination_signal_leaves_a_partial_report(tmp_path):
    run_dir, history = tmp_path / "run", tmp_path / "history.jsonl"
    run = subprocess.Popen([sys.executable, "-m", "conformance", "run", "--report-dir", str(run_dir), "--history",
                            str(history), "--", "--server-latency-ms", "40"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not any(run_dir.glob("results/*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # some instances judged, most not
    run.send_signal(signal.SIGTERM)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 3, output[-2000:]  # incomplete, not "nothing deviates"
    matrix = json.loads((run_dir / "matrix.json").read_text())
    partial = matrix["summary"]["partial"]
    assert 0 < partial["judged"] < partial["collected"] == 3038, partial
    assert matrix["summary"]["instances"] == partial["judged"]
    headline = f"PARTIAL RUN, stopped before its end: {partial['judged']} of 3038 check instances judged."
    assert headline in output
    for page in ("matrix.html", "matrix.md"):
        assert headline in (run_dir / page).read_text(), page
    assert "a partial run is not added to the history" in output and not history.exists()
    assert f"partial=PARTIAL RUN, stopped before its end: {partial['judged']} of 3038" in (
        run_dir / "allure-results" / "environment.properties").read_text()


def test_a_partial_run_is_compared_for_unexpected_failures_only():
    matrix = {"checks": [{"id": "a.expected-to-fail", "outcomes": ["pass"]},
                         {"id": "b.expected-to-pass", "outcomes": ["pass", "fail"]}]}
    known = {"a.expected-to-fail": Expectation("a.expected-to-fail", "fail")}
    whole = compare(matrix, known)
    assert [c for c, _, _ in whole.unexpected_passes] == ["a.expected-to-fail"]
    partial = compare(matrix, known, partial=True)
    assert partial.unexpected_passes == [] and [c for c, _, _ in partial.unexpected_failures] == ["b.expected-to-pass"]
    assert partial.changed and "partial run" in partial.lines()[0]


def test_a_partial_run_without_a_failure_never_reads_as_a_clean_one():
    headline = Headline(failed=0, errors=0, must=0, causes=0, checks=0, partial=(10, 2216))
    assert headline.bad and headline.text.startswith("PARTIAL RUN") and "10 of 2216" in headline.text
