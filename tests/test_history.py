"""The run history compares like with like: the same target identity (name, base URL), selection,
quirks and faults; run ids are unique even when the report folder is reused."""

import contextlib
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.report import history
from conformance.report.model import trend_points
from conformance.report.render import trend_svg
from test_full_run import run_cli, wait_for_port

SUBSET = "list_shape or n_choices"
RUN_ID = re.compile(r"\d{8}-\d{6}-(?P<target>.+)-[0-9a-f]{6}")


def entry(run, target="reference", base_url="embedded reference server", checks=(), keyword=None, quirks=(),
          faults=None, must=1.0):
    return {"format": history.HISTORY_FORMAT, "run": run, "target": target, "base_url": base_url,
            "selection": {"checks": list(checks), "keyword": keyword, "markers": None}, "quirks": list(quirks),
            "faults": faults, "models": ["m"], "finished": "2026-01-01T00:00:00Z",
            "scores": {"MUST": {"passed": 1, "judged": 1, "share": must}}, "checks": {}, "parameters": {}}


def test_previous_is_the_latest_earlier_run_of_the_same_configuration():
    clean = entry("clean")
    entries = [clean, entry("stop-only", checks=["chat.stop.*"]), entry("quirked", quirks=["stop-kept"]),
               entry("faulty", faults={"rates": {"429": 0.2}, "seed": 0}), entry("filtered", keyword="stop"),
               entry("elsewhere", base_url="http://127.0.0.1:8000/v1"), entry("other", target="netmind")]
    assert history.previous(entries, entry("tonight")) is clean
    assert history.previous(entries, entry("again", quirks=["stop-kept"]))["run"] == "quirked"
    # the order of patterns and quirks does not make runs unlike
    assert history.previous([entry("a", checks=["b.*", "a.*"], quirks=["y", "x"])],
                            entry("b", checks=["a.*", "b.*"], quirks=["x", "y"]))["run"] == "a"
    # another seed is another set of faults
    assert history.previous(entries, entry("f", faults={"rates": {"429": 0.2}, "seed": 1})) is None


def test_an_entry_that_recorded_no_configuration_is_never_compared():
    old = {"format": 1, "run": "reference", "target": "reference", "checks": {}, "scores": {}}
    assert history.previous([old], entry("tonight")) is None
    assert history.like_runs([old], "reference") == []


def test_the_trend_plots_only_like_runs_up_to_the_run_shown():
    entries = [entry("n1"), entry("quirked", quirks=["stop-kept"], must=0.25), entry("n2"), entry("n3")]
    assert [e["run"] for e in history.like_runs(entries, "n2")] == ["n1", "n2"]
    svg = trend_svg(trend_points(history.like_runs(entries, "n3"), "reference"), "reference")
    assert "3 run(s)" in svg and "25%" not in svg


def matrix_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "matrix.json").read_text())


def history_of(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "reports" / "history.jsonl").read_text().splitlines()]


def test_a_selected_quirked_run_is_recorded_as_such_and_never_compared_with_a_clean_one(tmp_path):
    quirked = run_cli("run", "--report-dir", "reports/stop", "--check", "chat.stop.*", "-n", "1", "--",
                      "--server-quirk", "stop-kept", cwd=tmp_path)
    assert quirked.returncode == 1, quirked.stdout[-2000:] + quirked.stderr[-2000:]
    run = matrix_of(tmp_path / "reports" / "stop")["run"]
    assert run["selection"] == {"checks": ["chat.stop.*"], "keyword": None, "markers": None}
    assert run["quirks"] == ["stop-kept"] and run["faults"] is None and run["base_url"] == "embedded reference server"
    for night in ("one", "two"):
        clean = run_cli("run", "--report-dir", f"reports/{night}", "-k", SUBSET, "-n", "1", cwd=tmp_path)
        assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]
    first, second = matrix_of(tmp_path / "reports" / "one"), matrix_of(tmp_path / "reports" / "two")
    assert first["changes"] is None  # the quirked stop run is not its previous run
    assert first["run"]["selection"] == {"checks": [], "keyword": SUBSET, "markers": None}
    assert second["changes"]["previous_run"] == first["run"]["id"]
    assert second["changes"]["regressed"] == second["changes"]["fixed"] == second["changes"]["new"] == []
    assert [t["run"] for t in second["trend"]] == [first["run"]["id"], second["run"]["id"]]
    entries = history_of(tmp_path)
    assert [(e["selection"]["checks"], e["quirks"]) for e in entries] == [(["chat.stop.*"], ["stop-kept"]),
                                                                         ([], []), ([], [])]
    assert all(e["base_url"] == "embedded reference server" and e["faults"] is None for e in entries)


def test_injected_faults_are_recorded_and_keep_the_run_apart(tmp_path):
    faulty = run_cli("run", "--report-dir", "reports/faulty", "-k", "list_shape", "-n", "1", "--",
                     "--server-faults", "429=0.3", "--server-fault-seed", "7", cwd=tmp_path)
    assert faulty.returncode in (0, 3), faulty.stdout[-2000:] + faulty.stderr[-2000:]
    clean = run_cli("run", "--report-dir", "reports/clean", "-k", "list_shape", "-n", "1", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert matrix_of(tmp_path / "reports" / "faulty")["run"]["faults"] == {"rates": {"429": 0.3}, "seed": 7}
    assert matrix_of(tmp_path / "reports" / "clean")["changes"] is None
    assert [e["faults"] for e in history_of(tmp_path)] == [{"rates": {"429": 0.3}, "seed": 7}, None]


def test_run_ids_are_unique_in_a_reused_folder_and_merge_without_colliding(tmp_path):
    """Two nights written to the same fixed folder, downloaded side by side, merge into one report."""
    ids = []
    for night in ("night1", "night2"):
        work = tmp_path / night
        work.mkdir()
        if night == "night2":  # the history travels from night to night, the folder name stays
            (work / "reports").mkdir()
            (work / "reports" / "history.jsonl").write_text((tmp_path / "night1" / "reports" / "history.jsonl")
                                                            .read_text())
        result = run_cli("run", "--report-dir", "reports/nightly", "-k", "list_shape", "-n", "1", cwd=work)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        run = matrix_of(work / "reports" / "nightly")["run"]
        assert RUN_ID.fullmatch(run["id"]) and RUN_ID.fullmatch(run["id"])["target"] == "reference"
        ids.append(run["id"])
    assert ids[0] != ids[1]
    assert [e["run"] for e in history_of(tmp_path / "night2")] == ids
    assert matrix_of(tmp_path / "night2" / "reports" / "nightly")["changes"]["previous_run"] == ids[0]
    report = run_cli("report", "night1/reports/nightly", "night2/reports/nightly", "--out", "merged",
                     "--history", "night2/reports/history.jsonl", "--no-allure", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    merged = json.loads((tmp_path / "merged" / "matrix.json").read_text())
    assert [t["run"] for t in merged["targets"]] == ids
    assert sorted(p.name for p in (tmp_path / "merged" / "runs").iterdir()) == sorted(ids)
    html = (tmp_path / "merged" / "index.html").read_text()
    links = set(re.findall(r"href='(runs/[^']+)'", html))
    assert {f"runs/{i}/matrix.html" for i in ids} <= links
    assert all((tmp_path / "merged" / link.split("#")[0]).is_file() for link in links)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(port: int, *quirks: str):
    """A reference server of its own, as a live OpenAI-compatible server (key: reference-key)."""
    server = subprocess.Popen([sys.executable, "-m", "conformance", "serve", "--port", str(port),
                               *[a for q in quirks for a in ("--quirk", q)]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def served():
    with serving(free_port()) as url:
        yield url


def test_a_server_that_changed_between_nights_shows_what_regressed(tmp_path):
    """Like runs (same target, base URL, selection, no quirks the suite knows of) are compared."""
    port, ids = free_port(), []
    for quirks in ((), ("ignore-n",)):  # the server is upgraded overnight and now ignores n
        with serving(port, *quirks) as url:
            result = run_cli("run", "--base-url", url, "--api-key-env", "SERVE_KEY", "--report-dir", "reports/nightly",
                             "-k", "n_choices", "-n", "1", cwd=tmp_path, env={"SERVE_KEY": "reference-key"})
        assert result.returncode == (1 if quirks else 0), result.stdout[-2000:] + result.stderr[-2000:]
        ids.append(matrix_of(tmp_path / "reports" / "nightly")["run"]["id"])
    assert ids[0] != ids[1]
    assert {e["target"] for e in history_of(tmp_path)} == {f"custom-127-0-0-1-{port}-v1"}
    change = matrix_of(tmp_path / "reports" / "nightly")["changes"]
    assert change["previous_run"] == ids[0] and change["fixed"] == change["new"] == []
    assert {(i["check"], i["before"], i["after"]) for i in change["regressed"]} == {
        ("chat.n.choices", "pass", "fail"), ("completions.n.choices", "pass", "fail")}
    assert len(change["regressed"]) == 4  # two checks x two models
    html = (tmp_path / "reports" / "nightly" / "matrix.html").read_text()
    assert f"Changes since run <code>{ids[0]}</code>" in html and "<svg" in html and "2 run(s)" in html


def test_a_base_url_run_is_a_target_of_its_own_with_its_own_expectations(tmp_path, served):
    # Expectations written for another server (or for every `--base-url` run, as `custom`) do not apply.
    (tmp_path / "expectations").mkdir()
    for name in ("custom", "reference"):
        (tmp_path / "expectations" / f"{name}.toml").write_text(
            "[[expect]]\ncheck = \"models.list.shape\"\noutcome = \"fail\"\n")
    port = served.rsplit(":", 1)[1].split("/")[0]
    result = run_cli("run", "--base-url", served, "--api-key-env", "SERVE_KEY", "-k", "list_shape", "-n", "1",
                     cwd=tmp_path, env={"SERVE_KEY": "reference-key"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    name = f"custom-127-0-0-1-{port}-v1"
    (run_dir,) = (tmp_path / "reports").glob(f"*-{name}-*")
    run = matrix_of(run_dir)["run"]
    assert run["id"] == run_dir.name and run["target"] == name and run["base_url"] == served
    assert "compared with" not in result.stdout
    assert [(e["target"], e["base_url"]) for e in history_of(tmp_path)] == [(name, served)]


def test_expectations_updated_from_a_subset_run_keep_what_it_did_not_run(tmp_path):
    from conformance.config import expectations

    path = tmp_path / "reference.toml"
    path.write_text('[[expect]]\ncheck = "chat.n.choices"\noutcome = "fail"\nnote = "n ignored"\n'
                    '[[expect]]\ncheck = "chat.stop.string-form"\noutcome = "fail"\nnote = "old"\n')
    subset = {"run": {"id": "r2", "selection": {"checks": ["chat.stop.*"], "keyword": None}, "quirks": []},
              "checks": [{"id": "chat.stop.string-form", "clause": "https://c", "outcomes": {"pass": 2},
                          "instances": [{"outcome": "pass", "message": ""}]}]}
    text = expectations.render("reference", subset, expectations.load(path))
    path.write_text(text)
    kept = expectations.load(path)
    assert set(kept) == {"chat.n.choices"} and kept["chat.n.choices"].note == "n ignored"  # not run: kept
    assert "# Last updated from run r2 (--check chat.stop.*)." in text  # the stop check now passes: dropped
