"""Evidence a person can read: a page per check instance (the request, the response, an event stream
as its events) and a page per check listing every instance, with an anchor per model; redacted as
the records are, self-contained, and loaded in a real browser."""

import html
import json
import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from test_full_run import free_port, records, run_cli, wait_for_port
from test_reports import ARTIFACTS, load_in_browser

# Not /responses: a --base-url target does not declare it, so its instances are unsupported, with no exchange.
SUBSET = "done_terminator or stop_excluded or list_shape or (invalid_value_names and temperature and not responses)"
MODELS = ("ref-small", "acme/Tiny-1.5")  # a model id with a slash, as hosted providers name them
QUIRKS = ("stop-kept", "keep-alive-comments")  # a failing MUST check; comments between the events


class Page(HTMLParser):
    """What a test needs from a page: links, ids, <pre> blocks, and table rows with their <pre> texts."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.pres: list[dict] = []
        self.rows: list[dict] = []
        self._tables: list[str] = []
        self._row: dict | None = None
        self._pre: dict | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        elif tag == "table":
            self._tables.append(attrs.get("class") or "")
        elif tag == "tr":
            self._row = {"table": self._tables[-1] if self._tables else "", "class": attrs.get("class") or "",
                         "pres": []}
        elif tag == "pre":
            self._pre = {"class": attrs.get("class") or "", "text": ""}

    def handle_endtag(self, tag):
        if tag == "pre" and self._pre is not None:
            self._pre["text"] = self._pre["text"].removeprefix("\n")  # as a browser reads a <pre>
            self.pres.append(self._pre)
            if self._row is not None:
                self._row["pres"].append(self._pre["text"])
            self._pre = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table" and self._tables:
            self._tables.pop()

    def handle_data(self, data):
        if self._pre is not None:
            self._pre["text"] += data


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    """`conformance run --base-url` against a served reference server that holds a known key and two
    quirks; returns the work folder, the run folder and the key."""
    work = tmp_path_factory.mktemp("evidence-view")
    key = "sk-" + secrets.token_hex(20)
    port = free_port()
    env = {**os.environ, "EVIDENCE_VIEW_KEY": key}
    serve = [sys.executable, "-m", "conformance", "serve", "--port", str(port), "--api-key-env", "EVIDENCE_VIEW_KEY",
             *[arg for m in MODELS for arg in ("--model", m)], *[arg for q in QUIRKS for arg in ("--quirk", q)]]
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        result = run_cli("run", "--target", "reference", "--base-url", f"http://127.0.0.1:{port}/v1",
                         "--api-key-env", "EVIDENCE_VIEW_KEY", *[arg for m in MODELS for arg in ("--model", m)],
                         "--report-dir", "run", "-k", SUBSET, "-n", "1", cwd=work, env={"EVIDENCE_VIEW_KEY": key})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]  # stop-kept fails its MUST
    return work, work / "run", key


def evidence_of(run_dir: Path) -> list[tuple[Path, dict]]:
    return [(path, json.loads(path.read_text(encoding="utf-8")))
            for path in sorted((run_dir / "evidence").glob("*.json"))]


def page_of(evidence_json: Path) -> str:
    page = evidence_json.with_suffix(".html")
    assert page.is_file(), f"no readable page beside {evidence_json.name}"
    return page.read_text(encoding="utf-8")


def resolves(page: Path, href: str) -> bool:
    """A relative link from `page` reaches an existing file, and its #fragment an id on that page."""
    target, _, fragment = href.partition("#")
    path = (page.parent / target).resolve() if target else page
    if not path.is_file():
        return False
    return not fragment or fragment in Page(path.read_text(encoding="utf-8")).ids


def test_every_evidence_file_has_a_self_contained_page_naming_its_check(served_run):
    _, run_dir, _ = served_run
    evidence = evidence_of(run_dir)
    assert len(evidence) == len(records(run_dir)) >= 50
    for path, record in evidence:
        text = page_of(path)
        dims = record["dimensions"]
        assert text.startswith("<!DOCTYPE html>")
        assert not re.search(r"<script|<link|<img|<iframe|\ssrc=|@import|url\(", text, re.I), path.name  # no assets
        for label, value in (("check", f"<code>{record['check']}</code>"), ("level", record["level"]),
                             ("model", dims["model"]), ("mode", dims["mode"]), ("path", dims["path"])):
            assert f"<tr><th>{label}</th><td>{value}</td></tr>" in text, (path.name, label)
        assert f"<span class='badge {record['outcome']}'>{record['outcome'].upper()}</span>" in text
        assert f"href='{record['clause']}'" in text
        exchanges = record["evidence"]["exchanges"]
        assert text.count("<section class='exchange'") == len(exchanges) >= 1
        assert html.escape(record["message"], quote=True) in text
        page = Page(text)
        assert all(resolves(path.with_suffix(".html"), href) for href in page.hrefs if not href.startswith("http"))


def test_a_json_body_reads_indented_not_as_one_escaped_string(served_run):
    _, run_dir, _ = served_run
    path, record = next((p, r) for p, r in evidence_of(run_dir)
                        if r["check"] == "chat.errors.invalid-value-names-param")
    exchange = record["evidence"]["exchanges"][0]
    body = exchange["response"]["body"]
    assert "\n" not in body and body.startswith('{"error"')  # one line in the JSON file
    text = page_of(path)
    shown = [p["text"] for p in Page(text).pres if p["class"] == "json"]
    request_shown, response_shown = shown[0], shown[1]
    assert json.loads(request_shown) == exchange["request"]["body"]
    assert json.loads(response_shown) == json.loads(body)
    assert response_shown.startswith('{\n  "error": {\n    "message": ')  # newlines and indent
    assert '\\"error\\"' not in text and "\\&quot;error\\&quot;" not in text  # never the escaped string
    assert f"HTTP {exchange['response']['status']}" in text
    assert "authorization: Bearer [REDACTED]" in text  # headers shown, as redacted in the record


def test_a_stream_shows_each_event_parsed_comments_and_done_as_such_and_the_raw_bytes(served_run):
    from conformance.wire.sse import parse_event_stream

    _, run_dir, _ = served_run
    path, record = next((p, r) for p, r in evidence_of(run_dir) if r["check"] == "chat.stream.done-terminator"
                        and r["dimensions"]["path"] == "http")
    exchange = next(e for e in record["evidence"]["exchanges"]
                    if "text/event-stream" in e["response"]["headers"].get("content-type", ""))
    body = exchange["response"]["body"]
    parsed = parse_event_stream(body.encode())
    assert parsed.comments and parsed.events[-1].data == "[DONE]"  # the quirk's keep-alives, and the terminator
    page = Page(page_of(path))
    rows = [r for r in page.rows if r["table"] == "events"]
    events = [r for r in rows if r["class"] in ("event", "done")]
    assert len(events) == len(parsed.events) >= 3
    for row, event in zip(events[:-1], parsed.events[:-1]):
        assert row["class"] == "event"
        assert json.loads(row["pres"][0]) == json.loads(event.data)  # each payload parsed ...
        assert row["pres"][0].startswith("{\n  ")  # ... and shown indented
    assert events[-1]["class"] == "done" and events[-1]["pres"] == ["data: [DONE]"]
    comments = [r for r in rows if r["class"] == "comment"]
    assert [r["pres"][0] for r in comments] == [f": {c}" for c in parsed.comments]
    assert rows.index(comments[0]) < rows.index(events[0])  # in the order they came: the quirk sends one first
    raw = [p["text"] for p in page.pres if p["class"] == "raw"]
    assert body in raw  # the raw stream stays at hand (in a <details>)


def test_stream_view_reads_streams_as_the_suites_strict_parser_does():
    from conformance.report.evidence import stream_items
    from conformance.wire.sse import parse_event_stream

    bodies = [
        "data: {\"a\": 1}\n\ndata: [DONE]\n\n",
        "\ufeff: keep-alive\r\n\r\nevent: error\r\nid: 7\r\ndata: {\"error\": {}}\r\n\r\n",
        "data: line one\rdata: line two\r\rdata: tail without its blank line\r",
        "data: {\"a\": 1}\n\n: ping\n\ndata: [DONE]\n",  # [DONE] never terminated
        "retry: 10\nfield-without-colon\ndata\n\n:only a comment at the end",
        "",
    ]
    for body in bodies:
        items = stream_items(body)
        parsed = parse_event_stream(body.encode())
        assert [(i["data"], i["event"], i["id"]) for i in items if i["kind"] == "event"] == \
            [(e.data, e.event, e.id) for e in parsed.events], body
        assert [i["text"] for i in items if i["kind"] == "comment"] == parsed.comments, body
        assert [i["text"] for i in items if i["kind"] == "unterminated"] == \
            ([parsed.unterminated] if parsed.unterminated is not None else []), body


def test_a_check_page_lists_every_instance_with_links_that_resolve(served_run):
    from conformance.report.evidence import check_page

    _, run_dir, _ = served_run
    recs = records(run_dir)
    matrix = json.loads((run_dir / "matrix.json").read_text())
    checks = {r["check"] for r in recs}
    assert {row["id"] for row in matrix["checks"]} == checks
    for check in checks:
        mine = [r for r in recs if r["check"] == check]
        page_path = run_dir / check_page(check)
        page = Page(page_path.read_text(encoding="utf-8"))
        instances = [row for row in page.rows if row["class"] == "instance"]
        assert len(instances) == len(mine), check
        evidence_links = [h for h in page.hrefs if h.startswith("../evidence/")]
        assert sorted(h for h in evidence_links if h.endswith(".html")) == \
            sorted(f"../{r['evidence_file'][:-len('.json')]}.html" for r in mine)
        assert all(resolves(page_path, href) for href in page.hrefs if not href.startswith("http")), check
        for model in {r["dimensions"]["model"] for r in mine}:
            assert resolves(run_dir / "matrix.html", check_page(check, model)), (check, model)
    # A cell (check, model) stands for its modes x paths x variants: its anchor reaches all of them.
    stop = run_dir / check_page("chat.stop.excluded-from-output", "acme/Tiny-1.5")
    target, _, anchor = str(stop).partition("#")
    text = Path(target).read_text(encoding="utf-8")
    section = text[text.index(f"id='{anchor}'"):]
    section = section[:section.index("</section>")]
    assert section.count("<tr class='instance'>") == 4 == sum(
        r["check"] == "chat.stop.excluded-from-output" and r["dimensions"]["model"] == "acme/Tiny-1.5" for r in recs)


def test_link_helpers_name_the_pages_the_writer_writes():
    from conformance.report.evidence import check_page, evidence_page, model_anchor

    assert evidence_page("evidence/ab12.json") == "evidence/ab12.html"
    assert evidence_page("runs/r1/evidence/ab12.json") == "runs/r1/evidence/ab12.html"
    assert check_page("chat.stop.excluded-from-output") == "checks/chat.stop.excluded-from-output.html"
    assert check_page("chat.stop.excluded-from-output", "ref-small") == \
        "checks/chat.stop.excluded-from-output.html#model-ref-small"
    hosted = ["meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama-Meta-Llama-3.1-8B-Instruct", "a b", "a/b", "a?b"]
    anchors = [model_anchor(m) for m in hosted]
    assert len(set(anchors)) == len(anchors)  # never two models on one anchor
    assert all(re.fullmatch(r"model-[A-Za-z0-9._-]+", a) for a in anchors)  # safe in an id and a URL


def test_the_key_given_to_the_server_appears_in_no_page_nor_in_the_merged_report(served_run):
    work, run_dir, key = served_run
    result = run_cli("report", "run", "--out", "merged", "--no-allure", cwd=work)
    assert result.returncode == 0, result.stderr
    run_id = json.loads((run_dir / "matrix.json").read_text())["run"]["id"]
    copy = work / "merged" / "runs" / run_id
    pages = [*run_dir.glob("evidence/*.html"), *run_dir.glob("checks/*.html"), *copy.glob("evidence/*.html"),
             *copy.glob("checks/*.html")]
    assert len(pages) >= 2 * (len(records(run_dir)) + 7)  # every page written, and copied with the run
    copied_check = copy / "checks" / "chat.stop.excluded-from-output.html"
    assert all(resolves(copied_check, h) for h in Page(copied_check.read_text()).hrefs if not h.startswith("http"))
    pieces = {key[i:i + 10] for i in range(len(key) - 9)}
    leaks = [(str(p), piece) for p in work.rglob("*") if p.is_file() for piece in pieces
             if piece in p.read_text(errors="replace")]
    assert leaks == []
    assert any("Bearer [REDACTED]" in p.read_text() for p in pages)


def test_transport_errors_retries_truncation_and_odd_bodies_are_shown_and_escaped(tmp_path):
    from conformance.report.evidence import write_evidence_pages

    request = {"method": "POST", "url": "http://example.invalid/v1/chat/completions",
               "headers": {"authorization": "Bearer [REDACTED]"}, "body": {"model": "m", "stream": True}}

    def exchange(status, body, content_type, **extra):
        return {"request": request, "response": {"status": status, "headers": {"Content-Type": content_type},
                                                 "body": body, "truncated": extra.pop("truncated", False),
                                                 "reads": 1}, "transport_error": None, "elapsed_ms": 1.0, **extra}

    record = {
        "nodeid": "suites/x.py::test_x[m-stream-http]", "check": "chat.x.odd", "feature": "chat.x",
        "endpoint": "chat", "level": "MUST", "clause": "https://platform.openai.com/docs/x", "statement": "S.",
        "extension": False, "target": "t", "dimensions": {"target": "t", "model": "m", "mode": "stream", "path": "http"},
        "variant": None, "outcome": "error", "message": "kept failing <b>after</b> 5 attempts",
        "observations": [], "tokens": {"prompt": 0, "completion": 0}, "duration_s": 1.0, "sent": 4,
        "evidence": {"retries": ["attempt 1 failed (ConnectError: refused); retrying in 0.5s"], "exchanges": [
            {"request": request, "response": {"status": None, "headers": {}, "body": "", "truncated": False,
                                              "reads": 0},
             "transport_error": "ConnectError: [Errno 111] Connection refused", "elapsed_ms": 0.3},
            exchange(200, '{"choices": [{"text": "' + "x" * 50, "application/json", truncated=True),
            exchange(200, "<html><script>alert(1)</script></html>", "text/html"),
            exchange(200, 'data: {"a": 1}\n\ndata: not json\n\nevent: error\ndata: {"e": 2}\n\ndata: [DONE]',
                     "text/event-stream"),
            exchange(200, '{"a": 1, "a": 2}', "application/json"),  # indenting would hide the first "a"
            exchange(200, "[" * 5000 + "]" * 5000, "application/json"),  # deeper than a parser can walk
        ]},
    }
    run_dir = tmp_path / "run"
    (run_dir / "evidence").mkdir(parents=True)
    (run_dir / "evidence" / "0123.json").write_text(json.dumps(record))
    (run_dir / "checks").mkdir()
    (run_dir / "checks" / "gone.html").write_text("a check the reused folder no longer runs")
    instance = {"model": "m", "mode": "stream", "path": "http", "variant": None, "outcome": "error",
                "message": record["message"], "evidence": "evidence/0123.json", "requests": 5, "retries": 1}
    matrix = {"run": {"id": "r", "target": "t", "models": ["m"]},
              "checks": [{"id": "chat.x.odd", "level": "MUST", "statement": "S.", "clause": record["clause"],
                          "extension": False, "instances": [instance]}]}
    write_evidence_pages(run_dir, matrix)
    text = (run_dir / "evidence" / "0123.html").read_text()
    assert "Transport error: ConnectError: [Errno 111] Connection refused" in text
    assert "<li>attempt 1 failed (ConnectError: refused); retrying in 0.5s</li>" in text
    assert "Truncated: the evidence keeps the first 512 KiB of this body" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script" not in text and "<b>" not in text
    page = Page(text)
    kinds = [r["class"] for r in page.rows if r["table"] == "events" and r["class"]]
    assert kinds == ["event", "event not-json", "event", "unterminated"]
    assert "event: error" in text
    assert '{"a": 1, "a": 2}' in [p["text"] for p in page.pres]  # shown as it came, not as {"a": 2}
    assert "[" * 5000 + "]" * 5000 in [p["text"] for p in page.pres]
    assert not (run_dir / "checks" / "gone.html").exists()
    assert (run_dir / "checks" / "chat.x.odd.html").is_file()


def test_the_allure_transcript_indents_json_and_keeps_a_stream_raw():
    from conformance.report.allure import transcript

    def exchange(body, content_type):
        return {"request": {"method": "POST", "url": "u", "headers": {}, "body": {"model": "m"}},
                "response": {"status": 200, "headers": {"content-type": content_type}, "body": body,
                             "truncated": False}, "elapsed_ms": 1}

    error = ('{"error": {"message": "Invalid \'temperature\': decimal below minimum value.", '
             '"type": "invalid_request_error"}}')
    assert transcript(exchange(error, "application/json")).endswith(
        '{\n  "error": {\n    "message": "Invalid \'temperature\': decimal below minimum value.",\n'
        '    "type": "invalid_request_error"\n  }\n}')
    stream = 'data: {"a": 1}\n\ndata: [DONE]\n\n'
    assert transcript(exchange(stream, "text/event-stream")).endswith(stream)


def test_the_pages_load_in_a_real_browser_without_console_errors(served_run):
    from conformance.report.evidence import check_page

    _, run_dir, _ = served_run
    failing, _ = next((p, r) for p, r in evidence_of(run_dir) if r["check"] == "chat.stop.excluded-from-output"
                      and r["outcome"] == "fail" and r["dimensions"]["mode"] == "stream")
    stream, _ = next((p, r) for p, r in evidence_of(run_dir) if r["check"] == "chat.stream.done-terminator"
                     and r["dimensions"]["path"] == "http")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for page, shot, expect in ((failing.with_suffix(".html"), "evidence-page.png", "Exchange 1 of"),
                               (stream.with_suffix(".html"), "evidence-stream.png", "keep-alive comment"),
                               (run_dir / check_page("chat.stop.excluded-from-output"), "check-page.png",
                                "model-acme-Tiny-1.5")):
        dom, console = load_in_browser(page, ARTIFACTS / shot)
        assert console == [], console
        assert expect in dom
        assert (ARTIFACTS / shot).stat().st_size > 10_000


def test_control_characters_a_model_emits_are_shown_not_written_into_the_page():
    """A random-weight model emits C0 control characters; HTML does not allow them, so a page shows
    each as its control picture (U+0005 as U+2405) and stays text."""
    from conformance.report.evidence import _text
    from conformance.report.render import escape as _e

    for escape in (_text, _e):
        shown = escape("a\x05b\x00c\td\ne\x7f")
        assert shown == "a\u2405b\u2400c\td\ne\u2421"


def _pretty_by_definition(value, depth=0, width=88):
    """pretty_json as its docstring defines it, each nested value encoded again at its level (the
    oracle the one-walk implementation is held to)."""
    encode = json.JSONEncoder(ensure_ascii=False).encode
    compact = encode(value)
    if not isinstance(value, (dict, list)) or not value or 2 * depth + len(compact) <= width:
        return compact
    inner, close = "  " * (depth + 1), "\n" + "  " * depth
    if isinstance(value, dict):
        return "{\n" + ",\n".join(f"{inner}{encode(str(k))}: {_pretty_by_definition(v, depth + 1)}"
                                  for k, v in value.items()) + close + "}"
    if not any(isinstance(item, (dict, list)) for item in value):
        lines, line = [], ""
        for piece in map(encode, value):
            if line and len(inner) + len(line) + len(piece) + 2 > width:
                lines.append(inner + line + ",")
                line = ""
            line = f"{line}, {piece}" if line else piece
        return "[\n" + "\n".join([*lines, inner + line]) + close + "]"
    return "[\n" + ",\n".join(inner + _pretty_by_definition(v, depth + 1) for v in value) + close + "]"


def test_pretty_json_and_the_remembered_views_show_what_the_definition_shows():
    import random

    from conformance.report.allure import transcript
    from conformance.report.evidence import pretty_json, pretty_request

    rng = random.Random(19)
    scalars = [0, -2.5, float("nan"), True, False, None, "", "s" * 40, 'é"\\\x01', 10 ** 20, (), (1, "a")]
    keys = ["a", "bb", "c" * 40, "ключ", 1, True, None, 2.5]

    def value(depth=0):
        roll = rng.random()
        if depth > 5 or roll < 0.3:
            return rng.choice(scalars)
        if roll < 0.6:
            return {rng.choice(keys[:4] if rng.random() < 0.9 else keys): value(depth + 1)
                    for _ in range(rng.randint(0, 5))}
        return [value(depth + 1) for _ in range(rng.randint(0, 8))]

    for _ in range(3000):
        v = value()
        for depth in (0, 2):
            assert pretty_json(v, depth) == _pretty_by_definition(v, depth)
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 90}], "stop": ["a", "b"]}
    assert pretty_request(body) == pretty_request(json.loads(json.dumps(body))) == _pretty_by_definition(body)
    # The same body shown twice (a reply several checks share) reads the same both times.
    reply = json.dumps({"id": "x", "choices": [{"index": 0, "message": {"content": "y" * 100}}]})
    exchange = {"request": {"method": "POST", "url": "u", "headers": {}, "body": body},
                "response": {"status": 200, "headers": {"content-type": "application/json"}, "body": reply,
                             "truncated": False}, "elapsed_ms": 1}
    first = transcript(exchange)
    assert transcript(json.loads(json.dumps(exchange))) == first
    assert first.endswith(_pretty_by_definition(json.loads(reply)))
