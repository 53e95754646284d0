"""`pytest suites --target X` is the same job as `conformance run`: the same report files, Allure
results, history line, summary and comparison with the expectations; only the exit code is each
tool's own (pytest's says whether an instance failed, conformance's whether anything changed)."""

import json
import subprocess
import sys
from pathlib import Path

from test_full_run import run_cli
from test_reports import quirk_args

SUBSET = "stop or n_choices"


def suites_dir() -> str:
    import conformance.suites

    return list(conformance.suites.__path__)[0]


def run_pytest(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pytest", suites_dir(), "-p", "no:cacheprovider", "-q", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=900)


def _files(run_dir: Path) -> set[str]:
    return {p.name for p in run_dir.iterdir()}


def test_pytest_with_a_target_writes_what_conformance_run_writes(tmp_path):
    by_cli = run_cli("run", "--report-dir", "by-cli", "-n", "1", "-k", SUBSET, *quirk_args("stop-kept"), cwd=tmp_path)
    by_pytest = run_pytest("--target", "reference", "--report-dir", "by-pytest", "-k", SUBSET,
                           "--server-quirk", "stop-kept", cwd=tmp_path)
    assert by_cli.returncode == 1 and by_pytest.returncode == 1, by_pytest.stdout[-3000:] + by_pytest.stderr[-2000:]
    cli_dir, pytest_dir = tmp_path / "by-cli", tmp_path / "by-pytest"
    assert _files(cli_dir) == _files(pytest_dir) >= {"matrix.html", "matrix.md", "matrix.json", "results",
                                                     "evidence", "allure-results"}
    for name in ("categories.json", "environment.properties", "executor.json"):
        assert (pytest_dir / "allure-results" / name).is_file(), name
    results = [len(list(d.glob("allure-results/*-result.json"))) for d in (cli_dir, pytest_dir)]
    assert results[0] == results[1] > 100
    cli_matrix, pytest_matrix = (json.loads((d / "matrix.json").read_text()) for d in (cli_dir, pytest_dir))
    outcomes = [{r["id"]: r["outcomes"] for r in m["checks"]} for m in (cli_matrix, pytest_matrix)]
    assert outcomes[0] == outcomes[1]
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["run"] for h in history] == [cli_matrix["run"]["id"], pytest_matrix["run"]["id"]]
    for result in (by_cli, by_pytest):
        out = result.stdout
        assert "Parameter verdicts (reference):" in out and "Deviations by cause" in out
        assert "MUST   chat.stop.excluded-from-output" in out
        assert "since run" in out or result is by_cli  # the second run is compared with the first


def test_pytest_without_paths_or_report_dir_writes_a_run_folder_with_allure_results(tmp_path):
    result = run_pytest("--target", "reference", "--check", "chat.stop.excluded-from-output", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    assert len(runs) == 1 and list(runs[0].glob("allure-results/*-result.json"))
    assert (tmp_path / "reports" / "history.jsonl").is_file()
    assert "No deviation: every judged check instance passed" in result.stdout


def test_the_exit_codes_differ_only_as_documented_with_expectations(tmp_path):
    first = run_cli("run", "--report-dir", "known", "--no-history", "--check", "*.stop.excluded-from-output",
                    *quirk_args("stop-kept"), cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-2000:]
    update = run_cli("expectations", "update", "known", "--out", "known.toml", cwd=tmp_path)
    assert update.returncode == 0, update.stderr
    args = ("--no-history", "--check", "*.stop.excluded-from-output", "--expectations", "known.toml")
    by_cli = run_cli("run", "--report-dir", "again", *args, *quirk_args("stop-kept"), cwd=tmp_path)
    by_pytest = run_pytest("--target", "reference", "--report-dir", "again-pytest", *args, "--server-quirk",
                           "stop-kept", cwd=tmp_path)
    line = "expectations: 2 known deviations still present, 0 unexpected failures, 0 unexpected passes"
    assert line in by_cli.stdout and line in by_pytest.stdout, by_pytest.stdout[-2000:]
    assert by_cli.returncode == 0  # nothing changed against the known deviations
    assert by_pytest.returncode == 1  # pytest's own: instances failed
    for run in ("again", "again-pytest"):
        assert json.loads((tmp_path / run / "expectations.json").read_text())["changed"] is False
