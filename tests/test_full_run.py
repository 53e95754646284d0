"""The main job end to end, as a user runs it: `conformance run`, then its report files."""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SEED_PARAMETERS = {
    "chat": ["model", "messages", "max_tokens", "stream", "temperature", "top_p", "stop", "n", "presence_penalty",
             "frequency_penalty", "logit_bias", "repetition_penalty"],
    "completions": ["model", "prompt", "max_tokens", "stream", "temperature", "top_p", "stop", "n",
                    "presence_penalty", "frequency_penalty", "logit_bias", "repetition_penalty"],
}


def run_cli(*args, cwd, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("embedded")
    result = run_cli("run", "--report-dir", "run", "--", "--server-request-log", "requests.jsonl", cwd=work)
    return result, work / "run"


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((run_dir / "results").glob("*.jsonl"))
            for line in path.read_text().splitlines() if line]


def test_every_check_instance_passes_on_the_reference_server(embedded_run):
    result, run_dir = embedded_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    recs = records(run_dir)
    assert len(recs) >= 300
    # The only instances that do not pass are parameters the reference target declares it does not
    # offer (a text-only toy model: audio, web search, reasoning; tools until implemented).
    declared_unsupported = [r for r in recs if r["outcome"] == "unsupported"
                            and "declares that it does not offer it" in r["message"]]
    failing = [(r["nodeid"], r["outcome"], r["message"]) for r in recs
               if r["outcome"] != "pass" and r not in declared_unsupported]
    assert failing == []
    assert "Parameter verdicts (reference)" in result.stdout
    assert re.search(r"\d+ check instances of \d+ checks: \d+ pass, 0 fail", result.stdout)


def test_every_generation_request_carries_a_length_limit(embedded_run):
    """A target that ignores the limit then costs the run the limit's worth of reading (a stream is cut
    once it is certainly passed: wire/watch.py), never a generation up to the model's context. The limit is
    there even where it is what the check is about (an invalid max_tokens is still a max_tokens)."""
    _, run_dir = embedded_run
    unlimited = []
    for line in (run_dir.parent / "requests.jsonl").read_text().splitlines():
        request = json.loads(line)
        if request["method"] != "POST" or not request["path"].endswith("completions"):
            continue
        try:
            body = json.loads(request["body"])
        except ValueError:
            continue  # a malformed body, on purpose: nothing is generated for it
        if isinstance(body, dict) and not {"max_tokens", "max_completion_tokens"} & set(body):
            unlimited.append(request["body"][:200])
    assert unlimited == []


def test_a_check_that_judged_reused_answers_says_so_beside_its_requests(embedded_run):
    """A check whose instances were all answered from other instances' answers sent nothing itself: its
    cost reads "0 (+N reused)", not "0 · 0" as if it judged nothing."""
    _, run_dir = embedded_run
    matrix = json.loads((run_dir / "matrix.json").read_text())
    reused_only = [c for c in matrix["checks"] if c["requests"] == 0 and sum(i["requests"] for i in c["instances"])]
    assert reused_only
    markdown = (run_dir / "matrix.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith(f"| [`{reused_only[0]['id']}`]"))
    assert "| 0 (+" in row and " reused) · " in row


def test_the_matrix_agrees_with_the_results(embedded_run):
    _, run_dir = embedded_run
    recs = records(run_dir)
    matrix = json.loads((run_dir / "matrix.json").read_text())
    assert matrix["summary"]["instances"] == len(recs)
    for outcome in ("pass", "fail", "unsupported", "inconclusive", "error"):
        assert matrix["summary"]["outcomes"][outcome] == sum(r["outcome"] == outcome for r in recs)
    assert sum(len(row["instances"]) for row in matrix["checks"]) == len(recs)
    assert {row["id"] for row in matrix["checks"]} == {r["check"] for r in recs}
    for row in matrix["checks"]:
        mine = [r for r in recs if r["check"] == row["id"]]
        counts = {}
        for r in mine:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        assert row["outcomes"] == counts
        for cell in row["models"].values():
            assert (run_dir / cell["evidence"]).is_file()
    # every check carries its metadata
    for r in recs:
        assert r["level"] in ("MUST", "SHOULD", "MAY") and r["clause"].startswith("https://") and r["feature"]
    # the seed's parameters are all honoured on both models, for both endpoints
    verdicts = {(p["endpoint"], p["parameter"]): p["models"] for p in matrix["parameters"]}
    for endpoint, names in SEED_PARAMETERS.items():
        for name in names:
            cells = verdicts[(endpoint, name)]
            assert {c["verdict"] for c in cells.values()} == {"honoured"}, (endpoint, name, cells)
            for cell in cells.values():
                assert all((run_dir / e).is_file() for e in cell["evidence"])
    markdown = (run_dir / "matrix.md").read_text()
    html = (run_dir / "matrix.html").read_text()
    for row in matrix["checks"]:
        assert f"`{row['id']}`" in markdown and f"<code>{row['id']}</code>" in html
    assert markdown.index("## Parameter verdicts") < markdown.index("## Checks")
    assert html.index("parameter-verdicts") < html.index("checks-table")
    # self-contained: no scripts, stylesheets, images or fonts from elsewhere
    assert not re.search(r"<(script|link|img|iframe)\b|@import|url\(", html)


def test_evidence_and_allure_results(embedded_run):
    _, run_dir = embedded_run
    recs = records(run_dir)
    sample = next(r for r in recs if r["check"] == "chat.stop.excluded-from-output")
    evidence = json.loads((run_dir / sample["evidence_file"]).read_text())
    exchanges = evidence["evidence"]["exchanges"]
    assert exchanges and all(e["request"]["headers"]["authorization"] == "Bearer [REDACTED]" for e in exchanges)
    assert any("stop" in (e["request"]["body"] or {}) for e in exchanges)
    allure = [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]
    assert len(allure) == len(recs)
    labels = {label["name"] for label in allure[0]["labels"]}
    assert {"endpoint", "feature", "check", "target", "model", "mode", "path", "epic", "story"} <= labels
    assert all(r["status"] in ("passed", "skipped") for r in allure)
    assert sum(r["status"] == "passed" for r in allure) == sum(r["outcome"] == "pass" for r in recs)
    # One step per request, each with the redacted request and response attached.
    assert sum(len(a.get("steps", [])) for a in allure) == sum(r["requests"] for r in recs)
    assert all([x["name"] for x in step["attachments"]] == ["exchange"] for a in allure for step in a.get("steps", []))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    """Until a server listens on 127.0.0.1:port (a `conformance serve` just started)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)


def test_live_style_run_with_base_url_and_key_never_leaks_the_key(tmp_path):
    """The same command pointed at a served base URL with a key: same matrix, key nowhere in the output."""
    key = "sk-" + secrets.token_hex(20)
    port = free_port()
    env = {**os.environ, "CONFORMANCE_TEST_KEY": key}
    server = subprocess.Popen([sys.executable, "-m", "conformance", "serve", "--port", str(port),
                               "--api-key-env", "CONFORMANCE_TEST_KEY"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port)
        result = run_cli("run", "--target", "reference", "--base-url", f"http://127.0.0.1:{port}/v1",
                         "--api-key-env", "CONFORMANCE_TEST_KEY", "--report-dir", "run", cwd=tmp_path,
                         env={"CONFORMANCE_TEST_KEY": key})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    assert matrix["summary"]["instances"] >= 300 and matrix["summary"]["outcomes"]["fail"] == 0
    assert matrix["run"]["base_url"] == f"http://127.0.0.1:{port}/v1"
    # The published folder too: merged matrix, copied evidence, and the Allure HTML where Node is present.
    report = run_cli("report", "run", "--out", "merged", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    if shutil.which("npx"):
        assert (tmp_path / "merged" / "allure-report" / "index.html").is_file(), report.stdout
    # No piece of the key (any 10 characters of it) in any file written, nor in the console output.
    pieces = {key[i:i + 10] for i in range(len(key) - 9)}
    leaks = [(str(p), piece) for p in tmp_path.rglob("*") if p.is_file()
             for piece in pieces if piece in p.read_text(errors="replace")]
    assert leaks == []
    console = result.stdout + result.stderr + report.stdout + report.stderr
    assert not [piece for piece in pieces if piece in console]
