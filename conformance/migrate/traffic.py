"""Read an application's requests: JSON Lines or a HAR file, one clear line per bad entry.

JSON Lines, one request per line, in any of these shapes:
- OpenAI's Batch API input: {"custom_id": ..., "method": "POST", "url": "/v1/chat/completions", "body": {...}}
- {"endpoint": "chat" | "completions" | "/v1/chat/completions", "body": {...}}
- a bare request body: {"model": ..., "messages": [...]} (chat) or {"model": ..., "prompt": ...} (completions)
- {"method": "GET", "url": "/v1/models"} or "/v1/models/{id}"

A HAR file (exported from a browser or proxy) is read entry by entry; only the request line and
body are used, never the headers (they carry the key).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

ENDPOINTS = ("chat", "completions", "models.list", "models.retrieve")
_SHORT_NAMES = {"chat": "chat", "chat.completions": "chat", "chat/completions": "chat", "completions": "completions",
                "models": "models.list"}
_CHECKED = "/chat/completions, /completions and /models"


@dataclasses.dataclass(frozen=True)
class Request:
    """One request of the application's traffic."""

    where: str  # "line 12" or "entry 3": how the report points back into the file
    endpoint: str  # one of ENDPOINTS
    body: dict[str, Any]  # empty for GET /models

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclasses.dataclass(frozen=True)
class Skipped:
    where: str
    reason: str
    # What it asked, where that could be read (a request without `model`); None: unreadable
    request: Request | None = None

    def line(self) -> str:
        return f"{self.where}: {self.reason}; skipped"


@dataclasses.dataclass
class Traffic:
    source: str
    format: str  # "jsonl" or "har"
    requests: list[Request] = dataclasses.field(default_factory=list)
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    ignored: int = 0  # HAR entries that are not OpenAI API calls at all (pages, images, ...)


class TrafficError(Exception):
    """The file as a whole cannot be read (missing, empty, not JSON Lines nor HAR)."""


def endpoint_of_path(path: str) -> str | None:
    """'/v1/chat/completions' -> 'chat'; '/v1/models/x' -> 'models.retrieve'; None when not checked."""
    path = urlsplit(path).path.rstrip("/")
    if path.endswith("/chat/completions") or path == "chat/completions":
        return "chat"
    if path.endswith("/completions") or path == "completions":
        return "completions"
    if path.endswith("/models") or path == "models":
        return "models.list"
    head, _, tail = path.rpartition("/models/")
    if tail and (head or path.startswith("/models/") or path.startswith("models/")):
        return "models.retrieve"
    return None


def _endpoint_name(value: str) -> str | None:
    return _SHORT_NAMES.get(value.strip().lower()) or endpoint_of_path(value)


def _body_problem(endpoint: str, body: Any) -> str | None:
    if endpoint.startswith("models"):
        return None
    if not isinstance(body, dict):
        return f"the request body is {type(body).__name__}, not a JSON object"
    needed = "messages" if endpoint == "chat" else "prompt"
    if needed not in body:
        return f"a {endpoint} request without `{needed}` (OpenAI refuses it)"
    if "model" not in body:
        return "a request without `model` (OpenAI refuses it)"
    return None


def request_from_object(where: str, value: Any) -> Request | Skipped:
    """One JSON Lines entry as a request, or why it was skipped."""
    if not isinstance(value, dict):
        return Skipped(where, f"a JSON {type(value).__name__}, not an object")
    method = str(value.get("method", "POST")).upper()
    named = value.get("url", value.get("endpoint"))
    if named is not None:
        if not isinstance(named, str):
            return Skipped(where, f"the endpoint {named!r} is not a string")
        endpoint = _endpoint_name(named)
        if endpoint is None:
            return Skipped(where, f"unknown endpoint {named!r} (the suite checks {_CHECKED})")
        body = value.get("body", {} if endpoint.startswith("models") else None)
    elif "messages" in value or "prompt" in value:  # a bare request body
        endpoint = "chat" if "messages" in value else "completions"
        body = value
    else:
        return Skipped(where, "no endpoint (`url` or `endpoint`) and not a request body (no `messages` or `prompt`)")
    if endpoint.startswith("models") and method != "GET":
        return Skipped(where, f"{method} on a models endpoint (the suite checks GET)")
    if not endpoint.startswith("models") and method != "POST":
        return Skipped(where, f"{method} on /{endpoint.replace('chat', 'chat/completions')} (it takes POST)")
    problem = _body_problem(endpoint, body)
    if problem:
        return Skipped(where, problem, Request(where, endpoint, body) if isinstance(body, dict) else None)
    return Request(where, endpoint, body if isinstance(body, dict) else {})


def _read_jsonl(path: Path, text_lines: Iterator[str], traffic: Traffic) -> None:
    for number, line in enumerate(text_lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            value = json.loads(line)
        except ValueError as exc:
            traffic.skipped.append(Skipped(where, f"not valid JSON ({exc})"))
            continue
        item = request_from_object(where, value)
        (traffic.skipped if isinstance(item, Skipped) else traffic.requests).append(item)


def _looks_like_api_call(url: str, text: str | None) -> bool:
    return "/v1/" in url or bool(text and '"model"' in text)


def _read_har(document: dict, traffic: Traffic) -> None:
    entries = document["log"].get("entries")
    if not isinstance(entries, list):
        raise TrafficError("a HAR file whose log has no `entries` list")
    for number, entry in enumerate(entries, start=1):
        where = f"entry {number}"
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            traffic.skipped.append(Skipped(where, "no request URL"))
            continue
        url, method = request["url"], str(request.get("method", "GET")).upper()
        post = request.get("postData") or {}
        text = post.get("text") if isinstance(post, dict) else None
        endpoint = endpoint_of_path(url)
        if endpoint is None:
            if _looks_like_api_call(url, text):
                traffic.skipped.append(Skipped(where, f"unknown endpoint {method} {urlsplit(url).path!r} "
                                                      f"(the suite checks {_CHECKED})"))
            else:
                traffic.ignored += 1
            continue
        if method == "OPTIONS":  # a browser's CORS preflight, not a call
            traffic.ignored += 1
            continue
        body: Any = {}
        if text:
            try:
                body = json.loads(text)
            except ValueError as exc:
                traffic.skipped.append(Skipped(where, f"the request body is not valid JSON ({exc})"))
                continue
        item = request_from_object(where, {"method": method, "url": url, "body": body})
        (traffic.skipped if isinstance(item, Skipped) else traffic.requests).append(item)


def read_traffic(path: Path) -> Traffic:
    """The requests of a JSON Lines or HAR file; bad entries are listed, never fatal."""
    if not path.is_file():
        raise TrafficError(f"{path} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TrafficError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise TrafficError(f"{path} is empty")
    document = None
    if text.lstrip().startswith("{") and '"log"' in text[:4096]:
        try:
            document = json.loads(text)
        except ValueError:
            document = None  # JSON Lines whose first request mentions "log"
    if isinstance(document, dict) and isinstance(document.get("log"), dict):
        traffic = Traffic(str(path), "har")
        _read_har(document, traffic)
    else:
        traffic = Traffic(str(path), "jsonl")
        _read_jsonl(path, iter(text.splitlines()), traffic)
    if not traffic.requests:
        reasons = "; ".join(s.line() for s in traffic.skipped[:3])
        raise TrafficError(f"{path} holds no request the suite can check" + (f" ({reasons})" if reasons else ""))
    return traffic
