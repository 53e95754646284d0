"""What a newcomer meets (issue 28): a run says what it ran against, a mistyped model stops the run,
`migrate` with skipped lines is not GO."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conformance.server import ReferenceServer
from test_full_run import run_cli

QUIRKS = ("stop-kept", "ignore-n")


@pytest.fixture(scope="module")
def quirked_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("quirked")
    result = run_cli("run", "--server-quirk", QUIRKS[0], "--server-quirk", QUIRKS[1], "--check", "*.stop.*",
                     "--check", "*.n.*", "--report-dir", "run", "--no-history", cwd=work)
    return result, work / "run"


def test_a_quirked_run_says_so_in_the_terminal_every_page_and_allure(quirked_run):
    result, run_dir = quirked_run
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    said = "the embedded reference server ran with quirks ignore-n, stop-kept"
    assert f"CHANGED ON PURPOSE: {said}" in result.stdout
    for page in ("matrix.md", "matrix.html"):
        assert said in (run_dir / page).read_text(), page
    allure = run_dir / "allure-results"
    assert said in (allure / "environment.properties").read_text()
    assert said in json.loads((allure / "executor.json").read_text())["buildName"]


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
