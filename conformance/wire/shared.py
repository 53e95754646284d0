"""Replies shared by every worker of a run: one greedy baseline per model and prompt, whichever
pytest-xdist worker asks first; the others wait for it and read it from the run folder."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Callable

from .reply import Reply
from .transport import Exchange

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: each worker then keeps its own copy
    fcntl = None


def _exchange_to_dict(e: Exchange) -> dict:
    return {"method": e.method, "url": e.url, "request_headers": e.request_headers, "request_body": e.request_body,
            "status": e.status, "response_headers": e.response_headers, "transport_error": e.transport_error,
            "elapsed_ms": e.elapsed_ms, "credential": e.credential, "body": base64.b64encode(e.body).decode()}


def _exchange_from_dict(d: dict) -> Exchange:
    exchange = Exchange(method=d["method"], url=d["url"], request_headers=d["request_headers"],
                        request_body=d["request_body"], status=d["status"], response_headers=d["response_headers"],
                        transport_error=d["transport_error"], elapsed_ms=d["elapsed_ms"], credential=d["credential"])
    exchange.record_read(base64.b64decode(d["body"]))
    return exchange


def _reply_to_dict(r: Reply | None) -> dict | None:
    if r is None:
        return None
    return {"endpoint": r.endpoint, "mode": r.mode, "path": r.path, "status": r.status, "body": r.body,
            "exchange": _exchange_to_dict(r.exchange) if r.exchange else None}


def _reply_from_dict(d: dict | None) -> Reply | None:
    if d is None:
        return None
    exchange = _exchange_from_dict(d["exchange"]) if d["exchange"] else None
    return Reply(d["endpoint"], d["mode"], d["path"], d["status"], exchange, body=d["body"])


class SharedReplies:
    """Regular (non-stream) replies keyed by their request, kept in `directory` under a file lock."""

    def __init__(self, directory: Path | None):
        self.directory = directory if fcntl is not None else None

    def get(self, key: str, send: Callable[[], list[Reply | None]]) -> list[Reply | None]:
        if self.directory is None:
            return send()
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(key.encode()).hexdigest()
        data = self.directory / f"{digest}.json"
        with open(self.directory / f"{digest}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if data.is_file():
                return [_reply_from_dict(d) for d in json.loads(data.read_text(encoding="utf-8"))]
            replies = send()
            data.write_text(json.dumps([_reply_to_dict(r) for r in replies]), encoding="utf-8")
            return replies
