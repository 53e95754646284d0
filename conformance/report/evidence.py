"""Evidence a person can read: one HTML page per check instance and one per check.

`evidence/<digest>.html` sits beside `evidence/<digest>.json` and shows the check, its outcome and
every exchange: the request line, headers and pretty-printed body; the response status, headers
and body (JSON pretty-printed, an event stream as its events, the raw bytes still at hand);
transport errors, retries and truncation.  `checks/<check id>.html` lists every instance of one
check with an anchor per model, so a matrix cell (check, model) can reach every instance it
stands for.  The pages show only what the record holds, and the record was redacted when it was
captured; nothing else is read.  No script, no external asset: each page stands on its own.

A renderer: an instance's page is drawn from its record (the workers write it as they record it,
report/results.py), a check's page from the check's row of the report model (model.py); the
links every page and matrix share are terms.py's.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

from ..wire.reuse import REUSED_NOTE
from ..wire.transport import MAX_RECORDED_BODY
from .terms import (CONTROL_PICTURES, check_file_name, check_page, evidence_page, instance_sort_key, model_anchor,
                    outcome_rank)

__all__ = ["CONTROL_PICTURES", "check_file_name", "check_page", "content_type", "evidence_page", "model_anchor",
           "pretty_body", "pretty_json", "pretty_request", "render_check_page", "render_evidence_page", "stream_items",
           "write_check_pages", "write_evidence_page", "write_evidence_pages"]

STREAM_PREFIXES = ("data:", "event:", "id:", "retry:", ":")
KEEP_ALIVE_COMMENTS = ("", "keep-alive", "keepalive", "ping")
_LINE_END = re.compile(r"\r\n|\r|\n")
PRETTY_WIDTH = 88  # characters a JSON object or array may take on one line

CSS = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem 2rem;color:#1d2430;max-width:90rem}"
    "nav a{margin-right:.9rem;font-size:.9em}h1{font-size:1.35rem;margin:.5rem 0}"
    "h2{font-size:1.1rem;margin:1.6rem 0 .4rem;border-bottom:1px solid #d6dbe3}h3{font-size:1rem;margin:.9rem 0 .3rem}"
    "table{border-collapse:collapse;margin:.3rem 0}th,td{border:1px solid #d6dbe3;padding:.2rem .5rem;"
    "text-align:left;vertical-align:top}th{background:#f1f4f8}"
    "pre{background:#f6f8fa;border:1px solid #e1e5eb;padding:.4rem .6rem;margin:.3rem 0;white-space:pre-wrap;"
    "overflow-wrap:anywhere;max-height:36rem;overflow:auto;font-size:12.5px}td pre{margin:0}"
    ".line{font:600 13px ui-monospace,monospace}.badge{padding:0 .45rem;border:1px solid #c8ced8;font-weight:600}"
    ".pass{background:#e3f6e8}.fail{background:#fde2e1}.error{background:#fbe7cf}.inconclusive{background:#fff6d6}"
    ".unsupported{background:#eef0f3}.note{color:#566074}.msg{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".mark{font-weight:600;padding:.1rem .45rem;background:#fff6d6;border:1px solid #e9d48a}"
    "tr.comment td,tr.done td{background:#f6f8fa;color:#566074}tr.not-json td,tr.unterminated td{background:#fff6d6}"
    "summary{cursor:pointer;color:#33507a}section.exchange{border-left:3px solid #d6dbe3;padding-left:.9rem}"
)


# What _e changes: the characters html.escape escapes, and the control characters drawn as pictures.
_ESCAPED = re.compile("[&<>\"'" + re.escape("".join(map(chr, CONTROL_PICTURES))) + "]")


def _e(value) -> str:
    text = str(value)
    if _ESCAPED.search(text) is None:  # most values (names, numbers, ids): nothing to escape
        return text
    return html.escape(text, quote=True).translate(CONTROL_PICTURES)


def _text(value: str) -> str:
    """Escaped for the content of an element (quotes stay: bodies are mostly JSON, and a page
    carries a lot of it)."""
    return html.escape(value, quote=False).translate(CONTROL_PICTURES)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


class _Recent:
    """The views of the last few bodies shown. A reply several checks share (a greedy baseline, say)
    is in each one's evidence, and they are recorded one after another; an instance's page and its
    Allure transcript show the same bodies too. Bounded: the most recent `size` bodies, none longer
    than `longest` characters."""

    def __init__(self, size: int = 32, longest: int = 64 * 1024):
        self.size, self.longest = size, longest
        self._views: dict = {}

    def get(self, key, length: int, compute):
        if length > self.longest:
            return compute()
        views = self._views
        if key in views:
            view = views.pop(key)  # and put back last: the most recent
        else:
            view = compute()
            if len(views) >= self.size:
                del views[next(iter(views))]
        views[key] = view
        return view


_BODY_VIEWS = _Recent()  # a response body: its indented view (or None), for the page and the transcript
_BODY_HTML = _Recent()  # a response body: its HTML on the page
_REQUEST_VIEWS = _Recent()  # a request body (a JSON value): its pretty_json, by its compact JSON


# --- bodies ---------------------------------------------------------------------------------------

def content_type(headers: dict | None) -> str:
    """The Content-Type of recorded headers ('' without one); header names may come in any case."""
    for key, value in (headers or {}).items():
        if key.lower() == "content-type":
            return str(value)
    return ""


def _without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key given twice")  # a dict, and so an indented view, would keep one
    return result


def indented(text: str) -> tuple[object, str] | None:
    """The JSON value of `text` and its indented view (pretty_json); None when it is not JSON or the
    view would not show all of it: a key given twice, or nesting too deep to walk."""
    try:
        value = json.loads(text, object_pairs_hook=_without_duplicate_keys)
        return value, pretty_json(value)
    except (ValueError, RecursionError):
        return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


# One encoder for every compact piece (json.dumps with arguments builds a new one per call).
_encode_compact = json.JSONEncoder(ensure_ascii=False).encode
_encode_string = json.encoder.encode_basestring  # what that encoder does with a str (ensure_ascii=False)


def _compact_views(value, views: dict) -> str:
    """`_encode_compact(value)`, built from the pieces of its members (joined as the encoder joins
    them, ', ' and ': '), and the view of every dict and list in it kept in `views` by id: one
    walk, where encoding each nested value again would go over the deepest ones once per level."""
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is dict:
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            if type(key) is not str:  # the encoder's own rules for other keys
                break
            parts.append(f"{_encode_string(key)}: {_compact_views(item, views)}")
        else:
            views[id(value)] = text = "{" + ", ".join(parts) + "}"
            return text
    elif kind is list:
        if not value:
            return "[]"
        views[id(value)] = text = "[" + ", ".join([_compact_views(item, views) for item in value]) + "]"
        return text
    return _encode_compact(value)


def pretty_json(value, depth: int = 0) -> str:
    """JSON indented by two spaces per level, where an object or array that fits on a line stays on
    one (a chunk of a stream reads in a few lines, not thirty) and an array of plain values flows
    over as few lines as it needs."""
    views: dict[int, str] = {}
    compact = _compact_views(value, views)
    return _pretty(value, depth, compact, views)


def _pretty(value, depth: int, compact: str, views: dict) -> str:
    # `views` is keyed by id: the values are members of the one pretty_json was given, alive meanwhile.
    if not isinstance(value, (dict, list)) or not value or 2 * depth + len(compact) <= PRETTY_WIDTH:
        return compact
    inner = "  " * (depth + 1)
    close = "\n" + "  " * depth

    def member(item) -> str:
        if isinstance(item, (dict, list)):
            view = views.get(id(item))
            return _pretty(item, depth + 1, _encode_compact(item) if view is None else view, views)
        return _compact_views(item, views)

    if isinstance(value, dict):
        items = [f"{inner}{_encode_compact(str(key))}: {member(item)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + close + "}"
    if not any(isinstance(item, (dict, list)) for item in value):
        lines, line = [], ""
        for piece in map(_encode_compact, value):
            if line and len(inner) + len(line) + len(piece) + 2 > PRETTY_WIDTH:
                lines.append(inner + line + ",")
                line = ""
            line = f"{line}, {piece}" if line else piece
        return "[\n" + "\n".join([*lines, inner + line]) + close + "]"
    return "[\n" + ",\n".join(inner + member(item) for item in value) + close + "]"


def pretty_body(body: str, sent_as: str = "") -> str:
    """The body indented when it is JSON (and indenting hides nothing); otherwise, and for an event
    stream (`sent_as`, its Content-Type), as it came."""
    if "text/event-stream" in sent_as.lower() or not body.lstrip().startswith(("{", "[")):
        return body
    view = _body_view(body)
    return body if view is None else view


def _body_view(body: str) -> str | None:
    """The indented view of a whole JSON body (indented's), or None; remembered for a while."""
    def compute() -> str | None:
        found = indented(body)
        return found[1] if found else None

    return _BODY_VIEWS.get(body, len(body), compute)


def pretty_request(body) -> str:
    """pretty_json of a recorded request body (a JSON value), remembered for a while by its JSON."""
    try:
        key = _encode_compact(body)
    except (ValueError, TypeError, RecursionError):
        return pretty_json(body)  # the same error, or a view of what JSON cannot write
    return _REQUEST_VIEWS.get(key, len(key), lambda: pretty_json(body))


def looks_like_event_stream(body: str) -> bool:
    return body.lstrip("\ufeff").startswith(STREAM_PREFIXES)


def stream_items(body: str) -> list[dict]:
    """The event stream as a reader follows it, in order: events, comments, and a last event that
    never got its blank line.

    The rules are conformance/wire/sse.py's (WHATWG): lines end in CRLF, LF or CR, ':' starts a comment,
    `data` lines of one event join with a newline, a blank line dispatches.  That parser walks
    character by character to take reads split anywhere; a recorded body is whole, so splitting it
    into lines first is as exact and nine times faster (a test compares the two)."""
    lines = _LINE_END.split(body.removeprefix("\ufeff"))
    incomplete = lines.pop()  # after the last line end: a line that never ended ('' when none)
    items: list[dict] = []
    data: list[str] = []
    event_type, last_id, pending = "", None, []
    for line in lines:
        if not line:
            if data:
                items.append({"kind": "event", "event": event_type or "message", "id": last_id,
                              "data": "\n".join(data)})
            data, event_type, pending = [], "", []
            continue
        pending.append(line)
        if line.startswith(":"):
            items.append({"kind": "comment", "text": line[1:].removeprefix(" ")})
            continue
        field, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event_type = value
        elif field == "id" and "\0" not in value:
            last_id = value
    if incomplete:
        pending.append(incomplete)
    if any(not line.startswith(":") for line in pending):
        items.append({"kind": "unterminated", "text": "\n".join(pending)})
    return items


def _stream_text(values: list) -> list[tuple[int, str, str]]:
    """The text each choice of a completion stream assembles to, with its finish reason."""
    texts: dict[int, list[str]] = {}
    finish: dict[int, str] = {}
    for value in values:
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list):
            continue
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index") if isinstance(choice.get("index"), int) else 0
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            texts.setdefault(index, [])
            if isinstance(piece, str):
                texts[index].append(piece)
            if choice.get("finish_reason") is not None:
                finish[index] = str(choice["finish_reason"])
    return [(index, "".join(texts[index]), finish.get(index, "")) for index in sorted(texts)]


def _stream_html(body: str, reads: int | None) -> str:
    items = stream_items(body)
    rows, values = [], []
    events = comments = 0
    for item in items:
        if item["kind"] == "comment":
            comments += 1
            label = "keep-alive comment" if item["text"].strip().lower() in KEEP_ALIVE_COMMENTS else "comment"
            rows.append(f"<tr class='comment'><td></td><td class='kind'>{label}</td>"
                        f"<td><pre>: {_e(item['text'])}</pre></td></tr>")
            continue
        if item["kind"] == "unterminated":
            rows.append("<tr class='unterminated'><td></td><td class='kind'>unterminated</td><td><pre>"
                        f"{_e(item['text'])}</pre><span class='note'>no blank line after it: a client drops this "
                        "event</span></td></tr>")
            continue
        events += 1
        fields = "" if item["event"] == "message" else f"event: {item['event']}"
        if item["id"] is not None:
            fields += f"{' · ' if fields else ''}id: {item['id']}"
        fields_html = f"<div class='note'>{_e(fields)}</div>" if fields else ""
        data = item["data"]
        if data == "[DONE]":
            rows.append(f"<tr class='done'><td>{events}</td><td class='kind'>[DONE]</td>"
                        f"<td>{fields_html}<pre>data: [DONE]</pre>end of the stream</td></tr>")
            continue
        view = indented(data)
        if view is None:
            kind = "event, JSON as it came" if _is_json(data) else "event, not JSON"
            rows.append(f"<tr class='event not-json'><td>{events}</td><td class='kind'>{kind}</td>"
                        f"<td>{fields_html}<pre>{_text(data)}</pre></td></tr>")
            continue
        values.append(view[0])
        rows.append(f"<tr class='event'><td>{events}</td><td class='kind'>event</td>"
                    f"<td>{fields_html}<pre class='json'>{_text(view[1])}</pre></td></tr>")
    summary = _plural(events, "event") + (f", {_plural(comments, 'comment')}" if comments else "")
    assembled = _stream_text(values)
    text_table = ""
    if assembled:
        text_table = ("<table class='assembled'><thead><tr><th>choice</th><th>text the deltas assemble to</th>"
                      "<th>finish_reason</th></tr></thead><tbody>" + "".join(
                          f"<tr><td>{index}</td><td><pre>{_text(text)}</pre></td><td>{_e(reason)}</td></tr>"
                          for index, text, reason in assembled) + "</tbody></table>")
    return (f"<p class='note'>Event stream: {_e(summary)}, in the order they came.</p>{text_table}"
            "<table class='events'><thead><tr><th>#</th><th>kind</th><th>data</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>" + _raw_details(body, reads))


def _raw_details(body: str, reads: int | None) -> str:
    arrived = f" in {_plural(reads, 'read')}" if isinstance(reads, int) else ""
    return (f"<details class='raw'><summary>raw body as received ({len(body)} "
            f"characters{arrived})</summary>{_raw_pre(body)}</details>")


def _raw_pre(text: str) -> str:
    # A browser drops one newline right after <pre>: this one, so that a body's own stays.
    return f"<pre class='raw'>\n{_text(text)}</pre>"


def _response_body_html(response: dict) -> str:
    body = response.get("body") or ""
    reads = response.get("reads")
    sent_as = content_type(response.get("headers"))
    if not body:
        return "<p class='note'>(empty body)</p>"
    return _BODY_HTML.get((body, reads, sent_as), len(body), lambda: _body_html(body, reads, sent_as))


def _body_html(body: str, reads, sent_as: str) -> str:
    if "text/event-stream" in sent_as.lower():
        return _stream_html(body, reads)
    if body.lstrip().startswith(("{", "[")):
        view = _body_view(body)
        if view is not None:
            return f"<pre class='json'>{_text(view)}</pre>"  # as it came: in the JSON file
        if _is_json(body):
            return ("<p class='note'>JSON shown as it came: an indented view would hide part of it (a key given "
                    f"twice, or nesting too deep).</p>{_raw_pre(body)}")
    if looks_like_event_stream(body):
        return (f"<p class='note'>Sent as {_e(sent_as or 'no content type')}, read here as an event "
                "stream.</p>" + _stream_html(body, reads))
    note = "" if sent_as.startswith("text/plain") else \
        f"<p class='note'>Not JSON ({_e(sent_as or 'no content type')}); shown as it came.</p>"
    return note + _raw_pre(body)


def _request_body_html(body) -> str:
    if isinstance(body, (dict, list)):
        try:
            return f"<pre class='json'>{_text(pretty_request(body))}</pre>"
        except RecursionError:
            return "<p class='mark'>The body is nested too deeply to show here: see the raw JSON.</p>"
    if body in ("", None):
        return "<p class='note'>(no body)</p>"
    return _raw_pre(body)


def _headers_html(headers: dict | None) -> str:
    headers = headers or {}
    if not headers:
        return "<p class='note'>(no headers)</p>"
    lines = _text("\n".join(f"{key}: {value}" for key, value in headers.items()))
    return (f"<details class='headers'><summary>{len(headers)} headers</summary>"
            f"<pre class='headers'>{lines}</pre></details>")


def _exchange_line(exchange: dict) -> str:
    """'POST http://host/v1/chat/completions → 200 (text/event-stream)', or '→ no response'."""
    request, response = exchange.get("request") or {}, exchange.get("response") or {}
    status = response.get("status")
    if status is None:
        return f"{request.get('method', '')} {request.get('url', '')} → no response"
    sent_as = content_type(response.get("headers")).split(";")[0]
    return f"{request.get('method', '')} {request.get('url', '')} → {status}" + (f" ({sent_as})" if sent_as else "")


def _exchange_html(number: int, total: int, exchange: dict) -> str:
    request, response = exchange.get("request") or {}, exchange.get("response") or {}
    status = response.get("status")
    elapsed = exchange.get("elapsed_ms")
    parts = [f"<section class='exchange' id='exchange-{number}'>",
             f"<h2>Exchange {number} of {total}: {_e(_exchange_line(exchange))}</h2>",
             "<h3>Request</h3>",
             f"<div class='line'>{_e(request.get('method', ''))} {_e(request.get('url', ''))}</div>",
             _headers_html(request.get("headers")), _request_body_html(request.get("body"))]
    parts.append("<h3>Response</h3>")
    if exchange.get("reused"):
        parts.append(f"<p class='note reused'>Not sent again: {_e(REUSED_NOTE)}.</p>")
    if exchange.get("transport_error"):
        parts.append(f"<p class='mark transport-error'>Transport error: {_e(exchange['transport_error'])}</p>")
    if status is None:
        parts.append(f"<p class='note'>No response was received ({_e(elapsed)} ms).</p>")
    else:
        sent_as = content_type(response.get("headers"))
        parts.append(f"<div class='line'>HTTP {_e(status)}<span class='note'> · {_e(sent_as or 'no content type')}"
                     f" · {_e(elapsed)} ms</span></div>")
        parts.append(_headers_html(response.get("headers")))
        if response.get("truncated"):
            parts.append(f"<p class='mark truncated'>Truncated: the evidence keeps the first "
                         f"{MAX_RECORDED_BODY // 1024} KiB of this body; the check read all of it.</p>")
        parts.append(_response_body_html(response))
    parts.append("</section>")
    return "".join(parts)


# --- pages ----------------------------------------------------------------------------------------

def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")


def _facts(rows: list[tuple[str, str]]) -> str:
    """A two-column table; the values are HTML already."""
    return "<table class='facts'>" + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _badge(outcome: str) -> str:
    return f"<span class='badge {_e(outcome)}'>{_e(outcome.upper())}</span>"


def render_evidence_page(record: dict, json_name: str) -> str:
    """The page of one check instance, written beside its evidence file `json_name`."""
    dims = record.get("dimensions") or {}
    check = record.get("check", "")
    outcome = record.get("outcome", "")
    variant = record.get("variant")
    evidence = record.get("evidence") or {}
    exchanges = evidence.get("exchanges") or []
    retries = evidence.get("retries") or []
    tokens = record.get("tokens") or {}
    instance = f"{dims.get('model')} · {dims.get('mode')} · {dims.get('path')}"
    title = f"{check}{' ' + variant if variant else ''} [{instance}]"
    level = str(record.get("level", "")) + (" · extension" if record.get("extension") else "")
    clause = record.get("clause") or ""
    sent = record.get("sent", len(exchanges))
    shared = len(exchanges) - sent if isinstance(sent, int) else 0
    requests = str(len(exchanges)) + (f" ({shared} of them sent once for several checks)" if shared > 0 else "")
    if retries:
        requests += f", {_plural(len(retries), 'retry', 'retries')}"
    facts = [
        ("check", f"<code>{_e(check)}</code>"),
        ("level", _e(level)),
        ("statement", _e(record.get("statement", ""))),
        ("clause", f"<a href='{_e(clause)}'>{_e(clause)}</a>" if clause else ""),
        ("outcome", _badge(outcome) + (f" <span class='note'>{_e(record['category'])}</span>"
                                       if record.get("category") else "")),
        ("message", f"<div class='msg'>{_e(record.get('message') or '')}</div>" if record.get("message")
         else "<span class='note'>(none)</span>"),
        ("model", _e(dims.get("model", ""))), ("mode", _e(dims.get("mode", ""))), ("path", _e(dims.get("path", ""))),
        ("variant", _e(variant) if variant else "<span class='note'>(none)</span>"),
        ("target", _e(record.get("target", dims.get("target", "")))),
        ("requests", _e(requests)),
        ("tokens", _e(f"{tokens.get('prompt', 0)} prompt + {tokens.get('completion', 0)} completion")),
        ("duration", _e(f"{record.get('duration_s', '')} s")),
        ("test", f"<code>{_e(record.get('nodeid', ''))}</code>"),
    ]
    alone = record.get("confirmed_alone")
    if alone:  # wire/alone.py: what it saw beside the run's other requests, and alone
        beside = alone.get("beside_others") or {}
        facts.append(("confirmed alone", _e(
            f"beside other requests of the run it was {beside.get('outcome', '?')} ({beside.get('message', '')}); "
            f"run again with none in flight, it was {alone.get('alone', '?')}: the outcome above")))
    model = dims.get("model")
    nav = (f"<nav><a href='../matrix.html'>matrix</a><a href='../{_e(check_page(check, model))}'>every instance of "
           f"this check{' on ' + _e(model) if model else ''}</a><a href='{_e(json_name)}'>raw JSON</a></nav>")
    parts = [nav, f"<h1><code>{_e(check)}</code>{_e(' ' + variant) if variant else ''} {_badge(outcome)}</h1>",
             _facts(facts)]
    observations = record.get("observations") or []
    if observations:
        parts.append("<h2>Parameter verdicts observed</h2><table><thead><tr><th>endpoint</th><th>parameter</th>"
                     "<th>verdict</th><th>note</th></tr></thead><tbody>" + "".join(
                         f"<tr><td>{_e(o.get('endpoint', ''))}</td><td><code>{_e(o.get('parameter', ''))}</code></td>"
                         f"<td>{_e(o.get('verdict', ''))}</td><td>{_e(o.get('note', ''))}</td></tr>"
                         for o in observations) + "</tbody></table>")
    if retries:
        parts.append("<h2>Retries</h2><ol class='retries'>" + "".join(f"<li>{_e(r)}</li>" for r in retries) + "</ol>")
    if not exchanges:
        parts.append("<p class='note'>No request was recorded for this instance.</p>")
    elif len(exchanges) > 1:
        parts.append("<h2>Exchanges</h2><ol class='exchanges'>" + "".join(
            f"<li><a href='#exchange-{number}'>{_e(_exchange_line(exchange))}</a></li>"
            for number, exchange in enumerate(exchanges, 1)) + "</ol>")
    parts += [_exchange_html(number, len(exchanges), exchange) for number, exchange in enumerate(exchanges, 1)]
    return _page(title, "".join(parts))


def _unreadable_page(json_name: str, problem: str) -> str:
    return _page(json_name, f"<nav><a href='../matrix.html'>matrix</a><a href='{_e(json_name)}'>raw JSON</a></nav>"
                            f"<h1>Unreadable evidence</h1><p class='mark'>{_e(json_name)}: {_e(problem)}</p>")


def _counts_text(instances: list[dict]) -> str:
    counts: dict[str, int] = {}
    for i in instances:
        counts[i["outcome"]] = counts.get(i["outcome"], 0) + 1
    return ", ".join(f"{counts[o]} {o}" for o in sorted(counts, key=outcome_rank))


def render_check_page(row: dict, run: dict, published: set[str] | None = None) -> str:
    """The page of one check: every instance, grouped by model (a section and anchor per model).
    `published`: the evidence files a published folder keeps (None: all); the others are listed
    by outcome and message, without a link."""
    instances = row.get("instances") or []
    models = [m for m in run.get("models", []) if any(i["model"] == m for i in instances)]
    models += sorted({i["model"] for i in instances} - set(models))
    level = str(row.get("level", "")) + (" · extension" if row.get("extension") else "")
    clause = row.get("clause") or ""
    facts = [("check", f"<code>{_e(row['id'])}</code>"), ("level", _e(level)),
             ("statement", _e(row.get("statement", ""))),
             ("clause", f"<a href='{_e(clause)}'>{_e(clause)}</a>" if clause else ""),
             ("run", f"<code>{_e(run.get('id', ''))}</code> · {_e(run.get('target', ''))}"),
             ("instances", _e(f"{len(instances)}: {_counts_text(instances)}"))]
    toc = " · ".join(f"<a href='#{_e(model_anchor(m))}'>{_e(m)}</a> "
                     f"({_e(_counts_text([i for i in instances if i['model'] == m]))})" for m in models)
    parts = ["<nav><a href='../matrix.html'>matrix</a></nav>", f"<h1><code>{_e(row['id'])}</code></h1>",
             _facts(facts), f"<p>Models: {toc}</p>"]
    with_variants = any(i.get("variant") for i in instances)
    for model in models:
        mine = sorted((i for i in instances if i["model"] == model), key=instance_sort_key)
        rows = []
        for i in mine:
            evidence = i.get("evidence") or ""
            if evidence and published is not None and evidence not in published:
                link = "<span class='note'>not published</span>"
            else:
                link = (f"<a class='evidence' href='../{_e(evidence_page(evidence))}'>view</a> · "
                        f"<a href='../{_e(evidence)}'>JSON</a>") if evidence else ""
            retries = i.get("retries") or 0
            variant = f"<td>{_e(i.get('variant') or '')}</td>" if with_variants else ""
            rows.append(f"<tr class='instance'><td class='{_e(i['outcome'])}'>{_e(i['outcome'])}</td>"
                        f"<td>{_e(i.get('mode', ''))}</td><td>{_e(i.get('path', ''))}</td>{variant}"
                        f"<td class='msg'>{_e(i.get('message') or '')}</td>"
                        f"<td>{_e(i.get('requests', ''))}"
                        f"{_e(' (' + _plural(retries, 'retry', 'retries') + ')') if retries else ''}</td>"
                        f"<td>{link}</td></tr>")
        parts.append(f"<section class='model' id='{_e(model_anchor(model))}'><h2>{_e(model)}</h2>"
                     f"<p class='note'>{_e(_plural(len(mine), 'instance'))}: {_e(_counts_text(mine))}</p>"
                     "<table class='instances'><thead><tr><th>outcome</th><th>mode</th><th>path</th>"
                     + ("<th>variant</th>" if with_variants else "")
                     + "<th>message</th><th>requests</th><th>evidence</th></tr></thead><tbody>" + "".join(rows)
                     + "</tbody></table></section>")
    return _page(f"{row['id']}: every instance", "".join(parts))


def write_evidence_page(evidence_json: Path) -> None:
    """evidence/<digest>.html beside evidence/<digest>.json."""
    try:
        record = json.loads(evidence_json.read_text(encoding="utf-8"))
        page = render_evidence_page(record, evidence_json.name) if isinstance(record, dict) else \
            _unreadable_page(evidence_json.name, "not a record")
    except (OSError, ValueError) as exc:
        page = _unreadable_page(evidence_json.name, str(exc))
    evidence_json.with_suffix(".html").write_text(page, encoding="utf-8")


def write_evidence_pages(run_dir: Path, matrix: dict) -> None:
    """evidence/<digest>.html for every evidence file of the run that has none yet, and
    checks/<check id>.html for every check of the matrix.

    The run's workers write each instance's page as they record it (results.ResultWriter), so
    in a run only the check pages are left; a folder written without them (by an older version,
    say) gets all its pages here.  The checks/ folder is rewritten whole: a reused report folder
    keeps no page of a check it no longer runs."""
    evidence_dir = run_dir / "evidence"
    names = set(os.listdir(evidence_dir)) if evidence_dir.is_dir() else set()  # one listing, not a stat per file
    for name in sorted(names):
        if name.endswith(".json") and name[:-len(".json")] + ".html" not in names:
            write_evidence_page(evidence_dir / name)
    write_check_pages(run_dir, matrix)


def write_check_pages(run_dir: Path, matrix: dict, published: set[str] | None = None) -> None:
    """checks/<check id>.html for every check of the matrix, the folder rewritten whole;
    `published` as for render_check_page."""
    checks_dir = run_dir / "checks"
    shutil.rmtree(checks_dir, ignore_errors=True)
    checks_dir.mkdir(parents=True)
    for row in matrix.get("checks", []):
        (checks_dir / check_file_name(row["id"])).write_text(
            render_check_page(row, matrix.get("run", {}), published), encoding="utf-8")
