"""One result record per check instance: the format every report is built from.

Each record names the check (id, feature, level, clause), the dimensions (target, model, mode,
path), the outcome and its message, the parameter verdicts the check observed, and a pointer to
its evidence file (every request and response, redacted).  Records are JSON Lines, one file per
pytest-xdist worker, so workers never write to the same file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING

from .evidence import render_evidence_page

if TYPE_CHECKING:  # pragma: no cover
    from ..harness.checks import ResolvedCheck
    from ..wire.client import Api
    from ..config.targets import Target
    from ..wire.transport import Redactor

SCHEMA_VERSION = 1


def record_for(item, meta: "ResolvedCheck", target: "Target", outcome: str, message: str, api: "Api | None",
               redactor: "Redactor | None", duration: float, requests: bool = False) -> dict:
    """`requests`: list every request the outcome rests on (sent, answered from another instance's
    answer, or adopted), as sent but for the key, for the pruned self-test's replay."""
    callspec = getattr(item, "callspec", None)
    params = dict(callspec.params) if callspec else {}
    instance = params["conformance_api"]
    dims = {"target": target.name, "model": instance.model, "mode": instance.mode, "path": instance.path}
    variant = variant_of(callspec)
    if redactor is not None:
        message = redactor.text(message)
        exchanges = [e.to_dict(redactor) for e in api.evidence.exchanges] if api else []
    else:
        exchanges = []
    return {
        "schema": SCHEMA_VERSION,
        "nodeid": item.nodeid,
        "check": meta.id,
        "feature": meta.feature,
        "endpoint": meta.endpoint,
        "level": meta.level,
        "clause": meta.clause,
        "statement": meta.statement,
        "parameter": meta.parameter,
        "extension": meta.extension,
        "target": target.name,
        "dimensions": dims,
        "variant": variant,
        "outcome": outcome,
        "message": message,
        "observations": api.observations if api else [],
        "tokens": tokens_of(api.evidence.exchanges) if api else {"prompt": 0, "completion": 0, "unmetered": 0},
        "duration_s": round(duration, 4),
        "evidence": {"exchanges": exchanges, "retries": api.evidence.retries if api else []},
        "sent": api.evidence.sent if api else 0,  # requests this instance sent itself (not shared ones)
        # A failure seen beside other requests of the run, run again alone (wire/alone.py): the outcome is alone's.
        **({"confirmed_alone": api.confirmed_alone} if api is not None and api.confirmed_alone else {}),
        **({"replay": [_request_of(e) for e in api.evidence.exchanges] if api else []} if requests else {}),
    }


def _request_of(exchange) -> list[str]:
    """method, path (with its query), credential, body: server.offline.Request's fields."""
    url = urlsplit(exchange.url)
    return [exchange.method, url.path + (f"?{url.query}" if url.query else ""), exchange.credential,
            exchange.request_body]


COMPLETION_PATHS = ("/chat/completions", "/completions", "/responses")


def _usage_in(value) -> dict | None:
    """A body's or an event's usage: its own, or (a /responses event) its response's."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("response"), dict):
        value = value["response"]
    return value["usage"] if isinstance(value.get("usage"), dict) else None


def _usage(body: bytes) -> dict | None:
    """The usage object of a completion response, regular or streamed (the last chunk that has one)."""
    text = body.decode("utf-8", errors="replace").lstrip()
    if text.startswith(("data:", "event:", ":")):
        found = None
        for line in text.splitlines():
            if line.startswith("data:") and '"usage"' in line:
                try:
                    value = json.loads(line[5:])
                except ValueError:
                    continue
                found = _usage_in(value) or found
        return found
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return _usage_in(value)


def tokens_of(exchanges) -> dict:
    """Tokens the completion (and /responses) requests of a check cost, by the target's own usage counts;
    `unmetered`: successful completion responses that reported no usage (streams without
    include_usage), whose cost is unknown."""
    prompt = completion = unmetered = 0
    for exchange in exchanges:
        if exchange.reused:  # another instance's request, counted there
            continue
        if not (exchange.url.split("?")[0].endswith(COMPLETION_PATHS) and exchange.status
                and 200 <= exchange.status < 300):
            continue
        usage = _usage(exchange.body)
        if usage is None:
            unmetered += 1
            continue
        # chat and completions count prompt and completion tokens; /responses, input and output tokens
        given = usage.get("prompt_tokens", usage.get("input_tokens"))
        made = usage.get("completion_tokens", usage.get("output_tokens"))
        prompt += given if isinstance(given, int) else 0
        completion += made if isinstance(made, int) else 0
    return {"prompt": prompt, "completion": completion, "unmetered": unmetered}


def variant_of(callspec) -> str | None:
    """The id pytest gave the `case` argument, e.g. 'chat-temperature=2.5' (None without one)."""
    if callspec is None or "case" not in callspec.params:
        return None
    instance = callspec.params.get("conformance_api")
    if instance is None:
        return callspec.id
    return callspec.id.replace(f"-{instance.id}", "").replace(instance.id, "").strip("-")


class ResultWriter:
    """Appends records to results/<worker>.jsonl, evidence to evidence/<digest>.json and its readable
    page to evidence/<digest>.html."""

    def __init__(self, run_dir: Path, worker: str):
        self.run_dir = run_dir
        (run_dir / "results").mkdir(parents=True, exist_ok=True)
        (run_dir / "evidence").mkdir(parents=True, exist_ok=True)
        self._file = open(run_dir / "results" / f"{worker}.jsonl", "a", encoding="utf-8")

    def write(self, record: dict) -> Path:
        digest = hashlib.sha1(record["nodeid"].encode()).hexdigest()[:16]
        relative = Path("evidence") / f"{digest}.json"
        # Not indented: only the compact form takes the C encoder (browsers and jq indent it).
        (self.run_dir / relative).write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        summary = {k: v for k, v in record.items() if k != "evidence"}
        summary["evidence_file"] = str(relative)
        summary["requests"] = len(record["evidence"]["exchanges"])
        summary["retries"] = len(record["evidence"]["retries"])
        self._file.write(json.dumps(summary, ensure_ascii=False) + "\n")
        self._file.flush()
        # The readable page too, here where the workers share the cost (creating a file costs more
        # than rendering it); after the run, report/evidence.py writes only the pages missing.
        (self.run_dir / relative.with_suffix(".html")).write_text(render_evidence_page(record, relative.name),
                                                                  encoding="utf-8")
        return relative

    def close(self) -> None:
        self._file.close()


def read_results(run_dir: Path) -> list[dict]:
    records = []
    for path in sorted((run_dir / "results").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    records.sort(key=lambda r: r["nodeid"])
    return records
