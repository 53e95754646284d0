"""What a run learns not to send again, shared by its workers through files in its folder.

- A check whose request **wedged** the target (client.py: the target stayed busy long after the suite
  gave the request up): its other instances would send the same request and wedge it again.
- A length limit seen to **run away** in a check: a request of it bounded by max_tokens or
  max_completion_tokens was answered far past the limit (RUNAWAY_TOKENS at least, and RUNAWAY_FACTOR
  times it: the limit ignored, the answer stopped only by the model's own end or its context, not one
  token too many). The same check's streamed request bounded by that limit alone would run as long,
  and a server that holds its streamed text back (llama-cpp-python's does once a token is not whole
  UTF-8, re-decoding everything at each step) stays silent and busy for twenty minutes on a tiny model,
  long after the client left. It is not sent (its instance is inconclusive, naming where the limit ran
  away): the check's other instances are judged from what was seen. The deviation is reported by the
  instance that saw it. Only streams, and only that check's: a regular answer's cost is bounded by the
  read timeout, and a target that ignores max_tokens everywhere still has every other check judged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .watch import Limit

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
    def note_answer(self, check_id: str, endpoint: str, body: dict, reply, instance: str) -> None:
        """Remember a limit the answer to `body` (`reply`, client.Reply) ran far past (see the module's
        docstring). Called after every request: what costs (the reply's usage, its finish) only when it may."""
        limit = Limit.of(body)
        if limit is None or not reply.ok:
            return
        tokens = (reply.usage or {}).get("completion_tokens")
        if not isinstance(tokens, int) or tokens < max(RUNAWAY_TOKENS, RUNAWAY_FACTOR * limit.total):
            return
        finish_reason = reply.finish_reason
        self._put(f"runaway {check_id} {endpoint} {body.get('model')} {limit.parameter}",
                  f"{limit.parameter}={limit.tokens} was answered with {tokens} tokens, finish_reason "
                  f"{finish_reason!r}, in {instance}")

    def refusal(self, check_id: str, endpoint: str, body: dict) -> str | None:
        """Why a check's request is not sent, or None."""
        if body.get("stream") is not True:
            return None
        limit = Limit.of(body)
        if limit is None or any(name in body for name in ("max_tokens", "max_completion_tokens")
                                if name != limit.parameter):
            return None  # unbounded, or bounded by another limit too
        seen = self._get(f"runaway {check_id} {endpoint} {body.get('model')} {limit.parameter}")
        if seen is None:
            return None
        return (f"not sent: {limit.parameter} is ignored on this target ({seen}); streamed, a request bounded by it "
                "alone would run as long, and can wedge the target (keep it busy long after the suite gives up)")
