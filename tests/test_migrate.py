"""`conformance migrate`: the go / no-go report for an application's own traffic."""

import json
import shutil
from pathlib import Path

import pytest

from conformance.migrate.features import features_of, uses_of
from conformance.migrate.replay import Difference, compare
from conformance.migrate.traffic import Request, TrafficError, read_traffic
from test_full_run import run_cli

DATA = Path(__file__).parent / "data" / "migrate"
# Three features of the sample log broken at once, each by a quirk that breaks only it.
BREAKING_QUIRKS = ("ignore-n", "stop-kept", "tool-calls-as-content")
BROKEN_BY_THEM = {"chat.n", "chat.stop", "chat.tools", "chat.tool_choice.required"}


def test_jsonl_keeps_every_good_line_and_names_each_bad_one():
    traffic = read_traffic(DATA / "app.jsonl")
    assert [r.where for r in traffic.requests] == ["line 1", "line 2", "line 3", "line 5", "line 8", "line 9"]
    assert [r.endpoint for r in traffic.requests] == ["chat", "chat", "completions", "chat", "models.list", "chat"]
    skipped = {s.where: s.reason for s in traffic.skipped}
    assert set(skipped) == {"line 6", "line 7", "line 10", "line 11", "line 12"}
    assert skipped["line 6"].startswith("not valid JSON")
    assert "unknown endpoint '/v1/embeddings'" in skipped["line 7"]
    assert "not an object" in skipped["line 10"]
    assert "without `messages`" in skipped["line 11"]
    assert "GET on /chat/completions" in skipped["line 12"]
    assert all("\n" not in s.line() for s in traffic.skipped)


def test_har_reads_api_calls_only_and_never_the_headers():
    traffic = read_traffic(DATA / "app.har")
    assert [(r.where, r.endpoint) for r in traffic.requests] == [
        ("entry 3", "chat"), ("entry 6", "models.retrieve"), ("entry 7", "completions")]
    assert traffic.ignored == 2  # the page itself and the CORS preflight
    skipped = {s.where: s.reason for s in traffic.skipped}
    assert set(skipped) == {"entry 4", "entry 5"}
    assert "unknown endpoint POST '/v1/embeddings'" in skipped["entry 4"]
    assert "not valid JSON" in skipped["entry 5"]
    assert "sk-har-secret" not in json.dumps([r.body for r in traffic.requests])


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("{not json}\n", "holds no request the suite can check (line 1: not valid JSON"),
    ('{"url": "/v1/audio/speech", "body": {}}\n', "unknown endpoint '/v1/audio/speech'"),
])
def test_a_file_without_any_usable_request_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "requests.jsonl"
    path.write_text(content)
    with pytest.raises(TrafficError, match=message.replace("(", r"\(").replace(".", r"\.")):
        read_traffic(path)


def chat(**body):
    return Request("line 1", "chat", {"model": "m", "messages": [{"role": "user", "content": "x"}], **body})


@pytest.mark.parametrize("body, expected, absent", [
    ({"n": 1}, {"chat.default:n"}, {"chat.n"}),
    ({"n": 3}, {"chat.n"}, {"chat.default:n", "chat.n.greedy"}),
    ({"n": 3, "temperature": 0}, {"chat.n", "chat.n.greedy"}, {"chat.default:n"}),
    ({"stop": "END"}, {"chat.stop", "chat.stop.string"}, {"chat.stop.several"}),
    ({"stop": ["a", "b"]}, {"chat.stop", "chat.stop.several"}, {"chat.stop.string"}),
    ({"stop": None}, {"chat.default:stop"}, {"chat.stop"}),
    ({"tools": [{}], "tool_choice": {"type": "function", "function": {"name": "f"}}},
     {"chat.tools", "chat.tool_choice.named"}, set()),
    ({"tools": [{}], "tool_choice": "auto", "parallel_tool_calls": True},
     {"chat.tools", "chat.default:tool_choice", "chat.default:parallel_tool_calls"}, {"chat.parallel_tool_calls"}),
    ({"response_format": {"type": "json_schema", "json_schema": {}}}, {"chat.response_format.json_schema"}, set()),
    ({"stream": True, "stream_options": {"include_usage": True}}, {"chat.stream", "chat.stream_options"},
     {"chat.regular"}),
    ({"logprobs": True, "top_logprobs": 3}, {"chat.logprobs", "chat.top_logprobs"}, set()),
    ({"user": "u", "guided_json": {}}, {"chat.param:user", "chat.unknown:guided_json"}, set()),
    ({"messages": [{"role": "developer", "content": [{"type": "text", "text": "x"}]}, {"role": "tool", "content": "1",
                                                                                      "tool_call_id": "c"}]},
     {"chat.messages.developer", "chat.messages.content-parts", "chat.tools.follow-up"}, set()),
])
def test_features_follow_what_a_value_asks_for(body, expected, absent):
    keys = set(features_of(chat(**body)))
    assert expected <= keys, keys
    assert not (absent & keys), keys


def test_completion_prompt_forms():
    def keys(prompt):
        return set(features_of(Request("line 1", "completions", {"model": "m", "prompt": prompt})))

    assert "completions.prompt" in keys("text")
    assert "completions.prompt.list" in keys(["a", "b"])
    assert "completions.prompt.tokens" in keys([1, 2, 3])


def test_echo_with_max_tokens_zero_is_a_feature_of_its_own():
    def keys(**body):
        return set(features_of(Request("line 1", "completions", {"model": "m", "prompt": "x", **body})))

    assert {"completions.echo", "completions.echo.max-tokens-zero"} <= keys(echo=True, max_tokens=0)
    assert "completions.echo.max-tokens-zero" not in keys(echo=True, max_tokens=1)


def test_error_checks_are_narrowed_to_the_parameters_sent():
    traffic = read_traffic(DATA / "app.jsonl")
    errors = next(u for u in uses_of(traffic) if u.feature.key == "chat.errors")
    narrowed = {p.split("@")[1] for p in errors.feature.checks if "@" in p}
    assert narrowed == {"max_tokens", "messages", "model", "n", "response_format", "stop", "stream", "temperature",
                        "tool_choice", "tools", "user"}
    assert not errors.feature.blocking


def test_replay_compares_structure_not_text():
    reference = {"status": "200", "choices": "3", "finish_reason": "stop, stop, stop", "usage": "prompt_tokens"}
    assert compare(reference, dict(reference)) == []
    candidate = {**reference, "choices": "1", "finish_reason": "stop"}
    assert [d.field for d in compare(reference, candidate)] == ["choices", "finish_reason"]
    assert Difference("finish_reason", "stop", "length").note  # the models may differ
    assert not Difference("finish_reason", "tool_calls", "stop").note  # a tool call that never came


@pytest.fixture(scope="module")
def broken_target(tmp_path_factory):
    work = tmp_path_factory.mktemp("migrate-broken")
    quirks = [a for q in BREAKING_QUIRKS for a in ("--server-quirk", q)]
    result = run_cli("migrate", "--requests", str(DATA / "app.jsonl"), "--out", "report", "--replay", "8", *quirks,
                     cwd=work)
    return result, work / "report"


def test_the_report_names_exactly_the_broken_features_with_evidence(broken_target):
    result, out = broken_target
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "migration.json").read_text())
    assert report["decision"] == "NO-GO"
    states = {f["key"]: f["state"] for f in report["features"]}
    assert {k for k, s in states.items() if s in ("broken", "unsupported")} == BROKEN_BY_THEM
    assert states["chat.regular"] == states["completions.logprobs"] == states["models.list"] == "works"
    for feature in report["features"]:
        if feature["state"] != "broken":
            continue
        assert feature["workaround"]
        failing = [c for c in feature["checks"] if c["outcome"] == "fail"]
        assert failing
        for check in failing:
            evidence = json.loads((out / check["example"]["evidence"]).read_text())
            assert evidence["check"] == check["check"]
            assert evidence["outcome"] == "fail"
            assert evidence["evidence"]["exchanges"], "the evidence holds the requests and responses"
    n = next(f for f in report["features"] if f["key"] == "chat.n")
    assert n["workaround"].startswith("Send n requests")
    assert {p["verdict"] for p in n["parameter_verdicts"].values()} == {"ignored"}
    assert "NO-GO" in result.stdout and "Send n requests" in result.stdout
    # Every bad line is reported in one line on stderr and in the report, and nothing else is lost.
    for where in ("line 6", "line 7", "line 10", "line 11", "line 12"):
        assert f"app.jsonl: {where}: " in result.stderr
    assert len(report["traffic"]["skipped"]) == 5 and report["traffic"]["requests"] == 6
    markdown = (out / "migration.md").read_text()
    html = (out / "migration.html").read_text()
    for title in ("`n` &gt; 1", "tool calls"):
        assert title in html
    assert "**NO-GO**" in markdown and "Send n requests" in markdown


def test_replay_lists_each_structural_difference(broken_target):
    result, out = broken_target
    report = json.loads((out / "migration.json").read_text())
    replayed = {r["where"]: r for r in report["replay"]}
    assert len(replayed) == 6  # the whole log is smaller than the bound
    assert {d["field"]: (d["reference"], d["candidate"]) for d in replayed["line 2"]["differences"]}["choices"] \
        == ("3", "1")
    tool_fields = {d["field"]: d["candidate"] for d in replayed["line 5"]["differences"]}
    assert tool_fields["tool_calls"] == "none"
    assert replayed["line 1"]["differences"] == [] and replayed["line 8"]["differences"] == []
    evidence = json.loads((out / replayed["line 2"]["evidence"]).read_text())
    assert set(evidence["exchanges"]) == {"reference", "candidate"}
    assert "replay: 6 of your requests" in result.stdout


def test_a_target_that_works_is_a_go_and_an_earlier_run_can_be_reused(tmp_path, broken_target):
    _, broken = broken_target
    # Judge the same traffic from the broken run's results, without running anything.
    again = run_cli("migrate", "--requests", str(DATA / "app.jsonl"), "--from-run", str(broken / "run"),
                    "--out", "again", cwd=tmp_path)
    assert again.returncode == 1
    assert not (tmp_path / "again" / "run").exists()
    assert json.loads((tmp_path / "again" / "migration.json").read_text())["decision"] == "NO-GO"
    clean = run_cli("migrate", "--requests", str(DATA / "app.har"), "--out", "clean", cwd=tmp_path)
    # Every feature it read works; but two entries were skipped (a call to /v1/embeddings, which the suite
    # does not check, and a body that is not JSON): what they ask was not judged, so not GO (issue 28).
    assert clean.returncode == 3, clean.stdout[-3000:] + clean.stderr[-3000:]
    report = json.loads((tmp_path / "clean" / "migration.json").read_text())
    assert report["decision"] == "UNDETERMINED"
    assert [s.split(":")[0] for s in report["traffic"]["skipped_unjudged"]] == ["entry 4", "entry 5"]
    assert "/v1/embeddings" in report["traffic"]["skipped_unjudged"][0]
    assert "3 requests judged, 2 skipped" in clean.stdout
    keys = {f["key"] for f in report["features"]}
    assert {"chat.stream", "chat.stop.string", "chat.stream_options", "models.retrieve", "completions.echo",
            "completions.prompt.list"} <= keys
    assert all(f["state"] == "works" for f in report["features"])


def test_a_run_without_the_needed_checks_leaves_the_decision_open(tmp_path):
    narrow = run_cli("run", "--report-dir", "narrow", "--no-history", "--check", "chat.n.*",
                     "--check", "chat.errors.invalid-value@temperature", cwd=tmp_path)
    assert narrow.returncode == 0, narrow.stderr[-2000:]
    ran = json.loads((tmp_path / "narrow" / "matrix.json").read_text())["checks"]
    assert {c["id"] for c in ran} == {"chat.n.choices", "chat.n.finish-reason-each", "chat.n.greedy-choices",
                                      "chat.errors.invalid-value"}
    variants = {i["variant"] for c in ran for i in c["instances"] if c["id"] == "chat.errors.invalid-value"}
    assert variants and all(v.startswith("chat-temperature=") for v in variants)
    result = run_cli("migrate", "--requests", str(DATA / "app.jsonl"), "--from-run", "narrow", "--out", "m",
                     cwd=tmp_path)
    assert result.returncode == 3
    report = json.loads((tmp_path / "m" / "migration.json").read_text())
    assert report["decision"] == "UNDETERMINED"
    states = {f["key"]: f["state"] for f in report["features"]}
    assert states["chat.n"] == "works" and states["chat.stop"] == "unknown"


@pytest.mark.parametrize("args, message", [
    (["--requests", "missing.jsonl"], "missing.jsonl does not exist"),
    (["--requests", "{data}/app.jsonl", "--from-run", "nowhere"], "nowhere/matrix.json does not exist"),
    (["--requests", "{data}/app.jsonl", "--target", "no-such-target"], "no-such-target"),
    (["--requests", "{data}/app.jsonl", "--replay", "1000"], "--replay takes 0 to 100"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    result = run_cli("migrate", *[a.replace("{data}", str(DATA)) for a in args], cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("conformance: error:"), result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_target_is_one_line_and_exit_3(tmp_path):
    shutil.copy(DATA / "app.jsonl", tmp_path / "app.jsonl")
    result = run_cli("migrate", "--requests", "app.jsonl", "--base-url", "http://127.0.0.1:9/v1",
                     "--api-key-env", "MIGRATE_KEY", cwd=tmp_path, env={"MIGRATE_KEY": "k"})
    assert result.returncode == 3
    assert "cannot reach http://127.0.0.1:9/v1" in result.stderr and "Traceback" not in result.stderr
