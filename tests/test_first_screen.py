"""What a reader sees first must be true: parameter verdicts never greener than their checks,
failures grouped by root cause, the deviations on the first screen and in the terminal."""

import json
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest

from conformance.report.causes import signature
from conformance.report.model import report_of
from conformance.report.render import render_terminal_lines
from test_full_run import run_cli
from test_reports import ARTIFACTS, chromium, quirk_args

STOP_CHECKS = "*.stop.*"


@pytest.fixture(scope="module")
def stop_kept(tmp_path_factory):
    """The stop checks against a server that leaves the stop sequence in the output."""
    work = tmp_path_factory.mktemp("stop-kept")
    result = run_cli("run", "--report-dir", "run", "--no-history", "--check", STOP_CHECKS, "--check",
                     "*.errors.invalid-value-names-param", *quirk_args("stop-kept", "errors-no-param"), cwd=work)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    return result, work / "run", json.loads((work / "run" / "matrix.json").read_text())


def test_a_parameter_whose_must_check_fails_never_reads_as_working(stop_kept):
    result, run_dir, matrix = stop_kept
    for endpoint in ("chat", "completions"):
        row = next(r for r in matrix["parameters"] if (r["endpoint"], r["parameter"]) == (endpoint, "stop"))
        for model, cell in row["models"].items():
            assert cell["verdict"] == "deviates", (endpoint, model, cell)
            failing = {f["check"]: f["level"] for f in cell["failing"]}
            assert failing[f"{endpoint}.stop.excluded-from-output"] == "MUST"
            assert all((run_dir / e).is_file() for e in cell["evidence"])
    html = (run_dir / "matrix.html").read_text()
    stop_row = re.search(r"<tr><td>chat</td><td><a [^>]*><code>stop</code></a></td>.*?</tr>", html).group(0)
    assert "class='deviates'" in stop_row and "class='honoured'" not in stop_row
    # the failing clauses are named in the cell (stop-kept fails several stop checks; the first few are shown)
    assert re.search(r"<code>chat\.stop\.[a-z-]+</code>", stop_row)
    md = (run_dir / "matrix.md").read_text()
    # the docs cell links the reference's documentation (targets/reference.toml [docs])
    assert re.search(r"\| chat \| `stop` \| \[declared\]\(https://platform\.openai\.com/[^)]+\) \| "
                     r"\[\*\*DEVIATES\*\*\].*chat\.stop\.[a-z-]+", md)
    assert re.search(r"chat\.stop \[ref-small, ref-large\]: deviates: MUST chat\.stop\.", result.stdout)


def test_failures_are_grouped_by_root_cause(stop_kept):
    result, _, matrix = stop_kept
    causes = matrix["causes"]
    failed = matrix["summary"]["outcomes"]["fail"]
    assert sum(c["instances"] for c in causes) == failed
    # Two quirks, two causes, each named by what the target does wrong, not by a message template.
    assert {c["name"] for c in causes} == {"`stop`: the stop sequence is left in the output",
                                           "refusals do not name the parameter in `error.param`"}
    # error.param null on every invalid value, both endpoints: one cause, hundreds of instances.
    param = next(c for c in causes if "error.param" in c["name"])
    names_param = sum(i["outcome"] == "fail" for row in matrix["checks"] if row["id"].endswith("names-param")
                      for i in row["instances"])
    assert param["instances"] == names_param > 300
    assert set(param["checks"]) == {"chat.errors.invalid-value-names-param",
                                    "completions.errors.invalid-value-names-param",
                                    "responses.errors.invalid-value-names-param"}
    assert param["endpoints"] == ["chat", "completions", "responses"]
    assert causes[0]["level"] == "MUST"  # MUST causes first, whatever their size
    assert f"from {len(causes)} cause(s)" in result.stdout
    assert re.search(rf"cause-\d+ +SHOULD +\[error envelope\] refusals do not name the parameter in `error.param` "
                     rf"\(chat, completions, responses; 3 checks, {param['instances']} instances\)", result.stdout)
    # each failed instance is listed under its cause, with the cause's category
    for row in matrix["checks"]:
        for i in row["instances"]:
            if i["outcome"] == "fail":
                cause = next(c for c in causes if c["id"] == i["cause"])
                assert i["category"] == cause["category"] and row["id"] in cause["checks"]


def test_the_terminal_names_the_failing_checks(stop_kept):
    result, _, matrix = stop_kept
    out = result.stdout
    assert "Failing checks (" in out
    line = next(l for l in out.splitlines() if "chat.stop.excluded-from-output" in l and "failed;" in l)
    assert "MUST" in line and re.search(r"\[ref-(small|large) · (regular|stream) · (sdk|http)\]", line)
    assert "expected the greedy output" in line
    lines = render_terminal_lines(report_of(matrix), limit=2)
    listed = [l for l in lines if re.match(r"  (MUST|SHOULD|MAY) +\S+  \d+/\d+ failed", l)]
    assert len(listed) == 2
    assert f"  and {len(matrix['failing_checks']) - 2} more (see the matrix)" in lines
    # The deviations come last, after the verdict table and the counts: what the terminal leaves on screen.
    assert out.index("Parameter verdicts") < out.index("Deviations by cause") < out.index("finished in")


def _rendered_positions(page: Path, tmp: Path) -> dict:
    """Where the browser lays out the first screen's landmarks (px from the top), read from the DOM
    of a copy of the page with a script that writes them down."""
    probe = tmp / page.name
    script = ("<script>const where = {};"
              "for (const [name, sel] of [['headline', '#headline'], ['causes', 'table.causes'],"
              " ['failing', 'table.failing'], ['parameters', '#parameter-verdicts']]) {"
              " const el = document.querySelector(sel); where[name] = el ? el.getBoundingClientRect().top : null; }"
              "document.body.setAttribute('data-where', JSON.stringify(where));</script>")
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"data-where=\"([^\"]+)\"", dom)
    assert found, dom[:500]
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_the_first_screen_of_the_page_shows_the_deviations(stop_kept, tmp_path):
    _, run_dir, matrix = stop_kept
    where = _rendered_positions(run_dir / "matrix.html", tmp_path)
    assert where["headline"] is not None and where["headline"] < 300
    assert where["causes"] is not None and where["causes"] < 900  # visible without scrolling
    assert where["headline"] < where["causes"] < where["failing"] < where["parameters"]
    html = (run_dir / "matrix.html").read_text()
    headline = re.search(r"<p id='headline' class='headline bad'>([^<]+)</p>", html).group(1)
    assert f"{matrix['summary']['outcomes']['fail']} failed check instances" in headline
    # Each cause and failing check links to evidence that exists.
    first_screen = html[html.index("id='headline'"):html.index("id='parameter-verdicts'")]
    links = set(re.findall(r"href='([^'#]+)", first_screen))
    assert links and all((run_dir / link).is_file() for link in links), sorted(links)[:5]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                    f"--screenshot={ARTIFACTS / 'first-screen.png'}", (run_dir / "matrix.html").as_uri()],
                   capture_output=True, timeout=120)


def test_a_clean_run_says_so_first(tmp_path):
    result = run_cli("run", "--report-dir", "run", "--no-history", "--check", "chat.stop.excluded-from-output",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    html = (tmp_path / "run" / "matrix.html").read_text()
    assert "class='headline good'>No deviation" in html
    assert "No deviation: every judged check instance passed" in result.stdout


def test_a_base_url_run_does_not_say_the_provider_lacks_every_parameter(reference_server, tmp_path):
    from conftest import TEST_KEY

    result = run_cli("run", "--base-url", reference_server.base_url, "--api-key-env", "SERVER_KEY", "--model",
                     "ref-small", "--report-dir", "run", "--no-history", "--check", "chat.stop.excluded-from-output",
                     cwd=tmp_path, env={"SERVER_KEY": TEST_KEY})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    assert {row["declared"] for row in matrix["parameters"]} == {"not declared"}
    assert "<td>not declared</td>" in (tmp_path / "run" / "matrix.html").read_text()


def _emoji(text: str) -> list[str]:
    """Characters a default font set lacks: pictographs, dingbats, emoji presentation selectors."""
    return sorted({c for c in text if ord(c) >= 0x2600 and (ord(c) <= 0x27BF or ord(c) >= 0x1F000)
                   or c == "\ufe0f" or unicodedata.category(c) == "So" and ord(c) > 0x2BFF})


def test_reports_use_marks_that_render_everywhere(stop_kept, tmp_path):
    _, run_dir, _ = stop_kept
    merged = run_cli("report", str(run_dir), "--out", str(tmp_path / "merged"), "--no-allure", cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    for page in (run_dir / "matrix.html", run_dir / "matrix.md", tmp_path / "merged" / "index.html",
                 tmp_path / "merged" / "matrix.md"):
        assert _emoji(page.read_text()) == [], page


def test_a_merged_report_opens_with_each_targets_deviations_by_cause(stop_kept, tmp_path):
    _, run_dir, matrix = stop_kept
    merged = run_cli("report", str(run_dir), "--out", str(tmp_path / "merged"), "--no-allure", cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    html = (tmp_path / "merged" / "index.html").read_text()
    run_id = matrix["run"]["id"]
    top = html.index("class='headline bad'")
    assert top < html.index("id='scores'") < html.index(f"id='deviations-{run_id}'") < html.index(
        "id='parameters-chat'")
    assert html.count("<tr id='") >= len(matrix["causes"])
    links = set(re.findall(r"href='(runs/[^'#]+)", html[top:html.index("id='parameters-chat'")]))
    assert links and all((tmp_path / "merged" / link).is_file() for link in links), sorted(links)[:5]
    md = (tmp_path / "merged" / "matrix.md").read_text()
    assert md.index("## Deviations") < md.index("## Parameter verdicts: chat")
    assert "refusals do not name the parameter in `error.param`" in md


def test_a_cause_masks_what_varies_and_keeps_how_it_fails():
    same = {signature("expected error.param 'temperature' (above the maximum 2); got None"),
            signature("expected error.param 'n' (five sequences (at most 4)); got None"),
            signature("[error envelope] expected error.param 'best_of'; got None")}
    assert same == {"expected error.param '…'; got null"}
    assert signature("expected HTTP 400; got HTTP 200") != signature("expected HTTP 400; got HTTP 500")
    assert signature("expected error.code a string; got 400") != signature("expected error.code a string; got None")
    assert signature("expected 3 choices; got 1") == signature("expected 5 choices; got 2")



def test_a_cause_reduces_what_came_back_typed_to_its_kind():
    # conformance.harness.describe writes values typed; the cause keeps the kind and why it fails
    assert signature("expected finish_reason 'length'; got string 'stop', though max_tokens ended generation") == \
        signature("expected finish_reason 'length'; got string 'eos_token', though max_tokens ended generation") == \
        "expected finish_reason '…'; got a string, though max_tokens ended generation"
    assert signature('expected X; got object {"content": "a"}, no role in it') == \
        signature("expected X; got object with keys ['content', 'refusal', 'tool_calls'], no role in it") == \
        "expected X; got an object, no role in it"
    assert signature("expected X; got the top-level 'error' is a string 'Bad', not an object") == \
        "expected X; got the top-level '…' is a string, not an object"
    assert signature("expected X; got error.code is a number 400, not a string or null") == \
        "expected X; got error.code is a number, not a string or null"
    assert signature("expected X; got null") != signature("expected X; got absent") != signature("expected X; got string ''")
