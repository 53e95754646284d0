"""What a run learns not to send again, shared by its workers through files in its folder.

- A check whose request **wedged** the target (client.py: the target stayed busy long after the suite
  gave the request up): its other instances would send the same request and wedge it again.
- A length limit seen to **run away**: a request bounded by max_tokens or max_completion_tokens was
  answered far past it (RUNAWAY_TOKENS at least, and RUNAWAY_FACTOR times the limit: the limit ignored,
  the answer stopped only by the model's own end or its context, not one token too many). Another
  request bounded by that limit alone, on that endpoint and model, would run as long: minutes on a
  slow target, and a server that holds its streamed text back (llama-cpp-python's does once a token is
  not whole UTF-8, re-decoding everything at each step) stays silent and busy for twenty minutes on a
  tiny model. It is not sent (its instance is inconclusive, naming where the limit ran away); the
  deviation is reported by the instance that saw it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .watch import Limit

ENDPOINTS = {"/chat/completions": "chat", "/completions": "completions"}
RUNAWAY_TOKENS = 256
RUNAWAY_FACTOR = 8


class NotSent(Exception):
    """A request the run does not send again (Hazards): the instance is inconclusive."""


class Hazards:
    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self._memory: dict[str, str] = {}

    def _put(self, key: str, text: str) -> None:
        self._memory.setdefault(key, text)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / (hashlib.sha1(key.encode()).hexdigest() + ".txt")
            if not path.exists():
                path.write_text(text, encoding="utf-8")

    def _get(self, key: str) -> str | None:
        if key in self._memory:
            return self._memory[key]
        if self.folder is not None:
            path = self.folder / (hashlib.sha1(key.encode()).hexdigest() + ".txt")
            if path.is_file():
                return path.read_text(encoding="utf-8")
        return None

    # --- wedges -----------------------------------------------------------------------------------
    def wedged(self, check_id: str, instance: str) -> None:
        self._put(f"wedged {check_id}", instance)

    def wedged_in(self, check_id: str) -> str | None:
        """The instance whose request wedged the target, for this check; None when none did."""
        return self._get(f"wedged {check_id}")

    # --- runaway limits ---------------------------------------------------------------------------
    def note_answer(self, endpoint: str, body: dict, usage: dict | None, finish_reason: str | None,
                    instance: str) -> None:
        """Remember a limit the answer to `body` ran far past (see the module's docstring)."""
        limit = Limit.of(body)
        tokens = (usage or {}).get("completion_tokens")
        if limit is None or not isinstance(tokens, int) or tokens < max(RUNAWAY_TOKENS, RUNAWAY_FACTOR * limit.total):
            return
        self._put(f"runaway {endpoint} {body.get('model')} {limit.parameter}",
                  f"{limit.parameter}={limit.tokens} was answered with {tokens} tokens, finish_reason "
                  f"{finish_reason!r}, in {instance}")

    def refusal(self, url_path: str, content: bytes) -> str | None:
        """Why a request is not sent, or None (the transport asks, for every request it would send)."""
        endpoint = next((e for suffix, e in ENDPOINTS.items() if url_path.endswith(suffix)), None)
        if endpoint is None or not content:
            return None
        try:
            body = json.loads(content)
        except ValueError:
            return None
        limit = Limit.of(body) if isinstance(body, dict) else None
        if limit is None or any(name in body for name in ("max_tokens", "max_completion_tokens")
                                if name != limit.parameter):
            return None  # unbounded, or bounded by another limit too
        seen = self._get(f"runaway {endpoint} {body.get('model')} {limit.parameter}")
        if seen is None:
            return None
        return (f"not sent: {limit.parameter} is ignored on this target ({seen}); a request bounded by it alone "
                "would run as long, and streamed it can wedge the target (keep it busy long after the suite gives up)")
