"""Cost accounting: tokens per check from the target's own usage, and a token budget that stops cleanly."""

import json

from conformance.report.results import tokens_of
from conformance.wire.transport import Exchange
from test_full_run import records, run_cli


def exchange(url: str, status: int, body: bytes) -> Exchange:
    e = Exchange(method="POST", url=url, request_headers={}, request_body="", status=status)
    e.record_read(body)
    return e


def test_tokens_come_from_each_completion_response():
    regular = exchange("http://h/v1/chat/completions", 200,
                       b'{"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}')
    stream = exchange("http://h/v1/completions", 200,
                      b'data: {"choices": [{"text": "a"}]}\n\ndata: {"choices": [], "usage": {"prompt_tokens": 2, '
                      b'"completion_tokens": 5}}\n\ndata: [DONE]\n\n')
    unmetered = exchange("http://h/v1/chat/completions", 200, b'data: {"choices": []}\n\ndata: [DONE]\n\n')
    refused = exchange("http://h/v1/chat/completions", 400, b'{"error": {"message": "no"}}')
    models = exchange("http://h/v1/models", 200, b'{"object": "list", "data": []}')
    assert tokens_of([regular, stream, unmetered, refused, models]) == {"prompt": 9, "completion": 8, "unmetered": 1}


def test_a_token_budget_stops_cleanly_and_lists_what_was_not_run(tmp_path):
    subset = "stop or n_choices or temperature"
    full = run_cli("run", "--report-dir", "full", "--no-history", "-k", subset, cwd=tmp_path)
    assert full.returncode == 0
    total = len(records(tmp_path / "full"))
    budget = run_cli("run", "--report-dir", "budget", "--no-history", "-k", subset, "--budget-tokens", "1500",
                     cwd=tmp_path)
    assert budget.returncode == 3, budget.stdout[-1500:]  # incomplete, not failed
    ran = records(tmp_path / "budget")
    left_out = json.loads((tmp_path / "budget" / "not-run.json").read_text())
    assert ran and left_out and len(ran) + len(left_out) == total
    assert {r["nodeid"] for r in ran}.isdisjoint(left_out)
    assert all(r["outcome"] != "fail" for r in ran)  # what did run was judged as usual
    assert f"not run: {len(left_out)} check instances" in budget.stdout
    def spent(run):
        tokens = json.loads((tmp_path / run / "matrix.json").read_text())["summary"]["tokens"]
        return tokens["prompt"] + tokens["completion"]

    assert 1500 <= spent("budget") < spent("full")  # it ran until the budget was spent, and no further
    matrix = json.loads((tmp_path / "budget" / "matrix.json").read_text())
    assert all("tokens" in row and "requests" in row for row in matrix["checks"])


def test_a_shared_reply_is_sent_once_and_read_back_whole(tmp_path):
    from conformance.wire.reply import Reply
    from conformance.wire.shared import SharedReplies

    body = {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    sent = []

    def send():
        sent.append(1)
        e = exchange("http://h/v1/chat/completions", 200, json.dumps(body).encode())
        return [Reply("chat", "regular", "http", 200, e, body=body), None]

    first = SharedReplies(tmp_path).get("greedy ref-small story", send)
    # Another worker: a new SharedReplies on the same folder finds it and does not send again.
    again = SharedReplies(tmp_path).get("greedy ref-small story", send)
    assert len(sent) == 1 and again[1] is None
    assert again[0].body == first[0].body and again[0].exchange.body == first[0].exchange.body
    assert tokens_of([again[0].exchange]) == {"prompt": 1, "completion": 1, "unmetered": 0}
    assert SharedReplies(None).get("k", send) and len(sent) == 2  # not shared: sent each time
