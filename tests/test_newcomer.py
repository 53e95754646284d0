"""What a newcomer meets (issue 28): a run says what it ran against, its causes are deviations named
in words, a mistyped model stops the run, `migrate` with skipped lines is not GO."""

import html
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conformance.server import ReferenceServer
from test_full_run import run_cli

QUIRKS = ("stop-kept", "ignore-n", "stream-no-done")
# What each quirk does wrong, as the report must name it (one cause each).
CAUSES = {"`stop`: the stop sequence is left in the output": ("stop", 12),
          "`n` ignored: one choice returned where 3 were asked": ("n", 6),
          "the stream ends without `data: [DONE]`": ("stream.done-terminator", 2)}


@pytest.fixture(scope="module")
def quirked_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("quirked")
    result = run_cli("run", *[arg for quirk in QUIRKS for arg in ("--server-quirk", quirk)], "--check", "*.stop.*",
                     "--check", "*.n.*", "--check", "*.stream.*", "--report-dir", "run", "--no-history", cwd=work)
    return result, work / "run"


def test_a_quirked_run_says_so_in_the_terminal_every_page_and_allure(quirked_run):
    result, run_dir = quirked_run
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    said = "the embedded reference server ran with quirks ignore-n, stop-kept, stream-no-done"
    assert f"CHANGED ON PURPOSE: {said}" in result.stdout
    for page in ("matrix.md", "matrix.html"):
        assert said in (run_dir / page).read_text(), page
    allure = run_dir / "allure-results"
    assert said in (allure / "environment.properties").read_text()
    assert said in json.loads((allure / "executor.json").read_text())["buildName"]


def test_three_quirks_give_three_causes_named_in_words_everywhere(quirked_run, tmp_path):
    result, run_dir = quirked_run
    matrix = json.loads((run_dir / "matrix.json").read_text())
    causes = {c["name"]: c for c in matrix["causes"]}
    assert set(causes) == set(CAUSES), sorted(causes)
    for name, (about, checks) in CAUSES.items():
        cause = causes[name]
        assert len(cause["checks"]) == checks and all(f".{about}" in c for c in cause["checks"]), cause["checks"]
        assert cause["endpoints"] == ["chat", "completions"]
        spread = f"(chat, completions; {checks} checks, {cause['instances']} instances)"
        assert f"[{cause['category']}] {name} {spread}" in result.stdout
        assert f"{cause['id']}: {name} {spread}" in (run_dir / "matrix.md").read_text()
        assert html.escape(f"{name} {spread}", quote=True) in (run_dir / "matrix.html").read_text()
    assert causes["`n` ignored: one choice returned where 3 were asked"]["category"] == "ignored parameter"
    assert "from 3 cause(s)" in result.stdout
    # Allure: every failed result carries its cause's name and category, one category per cause.
    labels = {}
    for path in (run_dir / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text())
        if data["status"] == "failed":
            got = {label["name"]: label["value"] for label in data["labels"]}
            labels.setdefault(got["cause"], set()).add(got["category"])
            assert data["statusDetails"]["message"].split("] ", 1)[0].endswith(f"[{got['category']}")
    assert labels == {f"{c['id']}: {c['name']}": {c["category"]} for c in causes.values()}
    # The merged page names them the same way.
    merged = run_cli("report", str(run_dir), "--out", str(tmp_path / "merged"), "--no-allure", cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    for name in CAUSES:
        assert name in (tmp_path / "merged" / "matrix.md").read_text()


def test_a_plain_run_says_nothing_of_the_kind(tmp_path):
    result = run_cli("run", "--check", "chat.stop.excluded-from-output", "--report-dir", "run", "--no-history",
                     cwd=tmp_path)
    assert result.returncode == 0 and "CHANGED ON PURPOSE" not in result.stdout + (tmp_path / "run" / "matrix.md").read_text()


@pytest.mark.parametrize("option", [("--server-quirk", "stop-kep"), ("--server-faults", "429=lots")])
def test_a_refused_server_option_says_why_in_one_line_and_leaves_no_report_folder(tmp_path, option):
    result = run_cli("run", *option, "--report-dir", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "conformance: error:" in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "reports").exists()


def test_server_quirk_is_in_the_run_help():
    assert "--server-quirk" in run_cli("run", "--help", cwd=Path.cwd()).stdout


def test_a_mistyped_model_stops_the_run_on_the_embedded_target(tmp_path):
    result = run_cli("run", "--model", "ref-smal", "--report-dir", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert "model 'ref-smal' is not served by target 'reference'" in result.stderr
    assert "ref-small, ref-large" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_mistyped_model_stops_the_run_on_a_live_target_whose_models_list_says_so(tmp_path):
    with ReferenceServer(api_key="newcomer-key") as server:
        result = run_cli("run", "--base-url", server.base_url, "--api-key-env", "NEWCOMER_KEY", "--model", "ref-smal",
                         "--report-dir", "run", cwd=tmp_path, env={"NEWCOMER_KEY": "newcomer-key"})
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-1000:]
    assert "model 'ref-smal' is not served by" in result.stderr and "its /models lists ref-small, ref-large" in \
        result.stderr
    assert not (tmp_path / "run").exists()


class ListsOneAnswersAny(ThreadingHTTPServer):
    """/models lists 'listed' only; every completion request is answered, whatever its model."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ListsOneAnswersAny)


class _ListsOneAnswersAny(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._json({"object": "list", "data": [{"id": "listed", "object": "model", "created": 1, "owned_by": "me"}]})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._json({"id": "x", "object": "chat.completion", "created": 1, "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "a"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


def test_a_model_left_out_of_the_list_but_answered_is_not_stopped(tmp_path):
    server = ListsOneAnswersAny()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_cli("run", "--base-url", f"http://127.0.0.1:{server.server_address[1]}/v1", "--api-key-env",
                         "NEWCOMER_KEY", "--model", "unlisted", "--check", "chat.stop.excluded-from-output", "-n", "1",
                         "--report-dir", "run", cwd=tmp_path, env={"NEWCOMER_KEY": "newcomer-key"})
    finally:
        server.shutdown()
    assert "/models does not list 'unlisted', yet the target answers it; going on" in result.stdout
    assert (tmp_path / "run" / "matrix.json").is_file()


def test_a_target_whose_models_list_is_missing_is_told_apart_not_stopped(tmp_path):
    with ReferenceServer(api_key="newcomer-key", quirks=["models-list-empty"]) as server:
        result = run_cli("run", "--base-url", server.base_url, "--api-key-env", "NEWCOMER_KEY", "--model", "ref-small",
                         "--check", "chat.stop.excluded-from-output", "--report-dir", "run", "-n", "1",
                         cwd=tmp_path, env={"NEWCOMER_KEY": "newcomer-key"})
    assert "lists no models in OpenAI's shape, so the model names could not be checked" in result.stdout
    assert (tmp_path / "run" / "matrix.json").is_file()


def migrate(tmp_path: Path, lines: list[str]):
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(lines) + "\n")
    return run_cli("migrate", "--requests", str(requests), "--out", "out", "-n", "1", cwd=tmp_path)


CHAT = json.dumps({"model": "ref-small", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5})


def test_migrate_with_an_unreadable_line_is_undetermined_not_go(tmp_path):
    result = migrate(tmp_path, [CHAT, '{"model": "ref-small", "messages": [', CHAT])
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-1000:]
    assert result.stdout.count("UNDETERMINED") >= 1 and "2 requests judged, 1 skipped" in result.stdout
    report = json.loads((tmp_path / "out" / "migration.json").read_text())
    assert report["decision"] == "UNDETERMINED"
    assert [s.split(":")[0] for s in report["traffic"]["skipped_unjudged"]] == ["line 2"]
    assert "not valid JSON" in report["traffic"]["skipped_unjudged"][0]
    assert "may ask for what nothing judged" in (tmp_path / "out" / "migration.md").read_text()


def test_migrate_with_a_skipped_line_that_asks_only_what_others_ask_stays_go(tmp_path):
    no_model = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5})
    result = migrate(tmp_path, [CHAT, no_model])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-1000:]
    assert "GO:" in result.stdout and "1 requests judged, 1 skipped" in result.stdout


def test_migrate_with_a_skipped_line_that_asks_for_more_is_undetermined(tmp_path):
    streamed_without_model = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5,
                                         "stream": True, "stop": ["."]})
    result = migrate(tmp_path, [CHAT, streamed_without_model])
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-1000:]
    unjudged = json.loads((tmp_path / "out" / "migration.json").read_text())["traffic"]["skipped_unjudged"]
    assert unjudged and unjudged[0].startswith("line 2: asks for ") and "chat.stream" in unjudged[0]


def test_a_clone_without_openais_document_says_in_the_summary_what_it_skipped_and_where_to_get_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["OPENAI_OPENAPI_SPEC"] = str(tmp_path / "no-such-openapi.yaml")
    tests = Path(__file__).parent
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(tests / "test_golden.py"),
                           str(tests / "test_check_info.py::test_every_openapi_quote_is_verbatim")],
                          capture_output=True, text=True, env=env, cwd=tests.parent, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    last = done.stdout.strip().splitlines()
    line = next(l for l in last if "tests skipped: OpenAI's OpenAPI document is not at" in l)
    assert line.startswith("5 tests skipped") and "https://github.com/openai/openai-openapi" in line, line
    assert "OPENAI_OPENAPI_SPEC" in line


def test_a_check_resting_on_a_forced_call_blames_the_forced_call_not_its_own_parameter(tmp_path):
    """Issue 28: on a server that makes no tool call where one is forced, the checks of parallel_tool_calls and of
    how calls are streamed are inconclusive, naming the forced call; their parameters are not called deviating."""
    result = run_cli("run", "--server-quirk", "tool-calls-as-content", "--check", "chat.parallel_tool_calls.*",
                     "--check", "chat.tools.stream-deltas", "--check", "chat.tools.stream-head-once",
                     "--check", "chat.tool_choice.required", "--report-dir", "run", "--no-history", cwd=tmp_path)
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    outcomes = {row["id"]: {i["outcome"] for i in row["instances"]} for row in matrix["checks"]}
    assert outcomes["chat.tool_choice.required"] == {"fail"}, outcomes
    for check_id in ("chat.parallel_tool_calls.at-most-one", "chat.tools.stream-deltas", "chat.tools.stream-head-once"):
        assert outcomes[check_id] == {"inconclusive"}, (check_id, outcomes[check_id])
        row = next(r for r in matrix["checks"] if r["id"] == check_id)
        assert all("the forced call this check rests on did not happen" in i["message"] for i in row["instances"])
    verdicts = {(p["endpoint"], p["parameter"]): set(c["verdict"] for c in p["models"].values())
                for p in matrix["parameters"]}
    assert "deviates" not in verdicts[("chat", "parallel_tool_calls")], verdicts[("chat", "parallel_tool_calls")]


def test_a_check_that_reads_usage_says_so_when_usage_counts_no_prompt(tmp_path):
    """prompt_tokens always 0: the checks that tell what was read by it are inconclusive, naming usage; usage's own
    check fails. 'The second part was not read' would say what was not observed."""
    result = run_cli("run", "--server-quirk", "usage-prompt-zero", "--check", "chat.messages.*", "--check",
                     "completions.prompt.*", "--check", "chat.usage.consistent", "--report-dir", "run",
                     "--no-history", cwd=tmp_path)
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    by_id = {row["id"]: row for row in matrix["checks"]}
    assert {i["outcome"] for i in by_id["chat.usage.consistent"]["instances"]} == {"fail"}
    for check_id in ("chat.messages.content-parts", "chat.messages.read", "completions.prompt.read",
                     "completions.prompt.token-array"):
        instances = by_id[check_id]["instances"]
        assert {i["outcome"] for i in instances} == {"inconclusive"}, check_id
        assert all("does not count the prompt (usage.consistent judges that)" in i["message"] for i in instances)
    assert not any("was not read" in i["message"] for row in matrix["checks"] for i in row["instances"])
