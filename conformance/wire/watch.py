"""Watching a streamed answer as it arrives: when to stop reading before its end.

A stream is read to its end, except when waiting longer can only cost time and the finding is
already certain:
- it is still going after the target's stream deadline (`stream_deadline_seconds`);
- it is silent: bytes keep coming (keep-alive comments) but no event, for longer than the read
  timeout a silent connection would have been given (`timeout_seconds`);
- it ran past the length limit the request carried (max_tokens, max_completion_tokens): a usage
  count over it, or more text or more events than that many tokens can make. A token is never more
  than MAX_EVENTS_PER_TOKEN events nor MAX_CHARACTERS_PER_TOKEN characters, so beyond those the limit
  was certainly not kept, and the rest of the answer (up to the model's context) is not waited for.

The watch sees every network read (transport.py) and raises `StoppedReading`; what was read is the
evidence, and the reply says why the suite stopped (client.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time

LIMIT_PARAMETERS = ("max_tokens", "max_completion_tokens")
MAX_EVENTS_PER_TOKEN = 16  # a token split across events (a character a byte, a tool call's pieces) at most
MAX_CHARACTERS_PER_TOKEN = 64  # the longest tokens of common vocabularies (runs of spaces, of '=') are shorter
SLACK = 32  # events or characters beyond that: role, finish and usage chunks, a first empty piece
LINE_END = re.compile(rb"\r\n|\r|\n")


class StoppedReading(Exception):
    """The suite stopped reading a stream before its end. `kind`: "deadline", "silent" or "runaway";
    `parameter`: the limit a runaway ran past."""

    def __init__(self, kind: str, reason: str, parameter: str | None = None):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.parameter = parameter


@dataclasses.dataclass
class Limit:
    parameter: str
    tokens: int  # per choice
    choices: int = 1
    echoed: bool = False  # the prompt comes back as text too (completions' echo): characters say nothing

    @classmethod
    def of(cls, body: dict) -> "Limit | None":
        for name in LIMIT_PARAMETERS:
            value = body.get(name)
            if _count(value):
                prompt = body.get("prompt")
                # A list of prompts (strings, or token lists) is answered with n choices each.
                prompts = len(prompt) if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else 1
                return cls(name, value, (body["n"] if _count(body.get("n")) else 1) * prompts,
                           echoed=body.get("echo") is True)
        return None

    @property
    def total(self) -> int:
        return self.tokens * self.choices


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class StreamWatch:
    """One streamed answer's reads, judged as they come (`read` raises StoppedReading)."""

    def __init__(self, deadline: float, silence: float, limit: Limit | None = None):
        self.deadline = deadline
        self.silence = silence
        self.limit = limit
        self.started = time.monotonic()
        self.last_event = self.started
        self.events = 0
        self.characters = 0
        self.tokens: int | None = None  # the latest usage.completion_tokens a chunk carried
        self._pending = b""

    @classmethod
    def for_request(cls, content: bytes, deadline: float, silence: float) -> "StreamWatch | None":
        """A watch for a request that asks for a stream; None for any other."""
        if not content or b'"stream"' not in content:
            return None
        try:
            body = json.loads(content)
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("stream") is not True:
            return None
        return cls(deadline, silence, Limit.of(body))

    def read(self, chunk: bytes) -> None:
        now = time.monotonic()
        if b"data" in chunk or b"event" in chunk:
            self.last_event = now
        if self.limit is not None:
            self._count(chunk)
        if now - self.started > self.deadline:
            raise StoppedReading("deadline", f"still going after {self.deadline:g}s, the target's stream deadline")
        if now - self.last_event > self.silence:
            raise StoppedReading("silent", f"keep-alive comments only, no event, for {now - self.last_event:.0f}s, "
                                           f"past the read timeout of {self.silence:g}s")
        passed = self._passed()
        if passed:
            raise StoppedReading("runaway", passed, self.limit.parameter)

    def _count(self, chunk: bytes) -> None:
        lines = LINE_END.split(self._pending + chunk)
        self._pending = lines.pop()  # what follows the last line end: a line still arriving
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            self.events += 1
            try:
                value = json.loads(line[5:])
            except ValueError:
                continue
            if isinstance(value, dict):
                self._take(value)

    def _take(self, chunk: dict) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.tokens = usage["completion_tokens"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            for text in (choice.get("text"), delta.get("content"), delta.get("reasoning_content")):
                if isinstance(text, str):
                    self.characters += len(text)
            for call in delta.get("tool_calls") or ():
                arguments = ((call or {}).get("function") or {}).get("arguments") if isinstance(call, dict) else None
                if isinstance(arguments, str):
                    self.characters += len(arguments)

    def _passed(self) -> str | None:
        """Why the limit was certainly not kept, or None."""
        limit = self.limit
        if limit is None:
            return None
        asked = f"{limit.parameter}={limit.tokens}" + (f" ({limit.choices} choices)" if limit.choices > 1 else "")
        tokens = f"{limit.total} token{'s' if limit.total > 1 else ''}"
        if self.tokens is not None and self.tokens > limit.total:
            return f"usage.completion_tokens {self.tokens} in a chunk, past {asked}"
        if not limit.echoed and self.characters > MAX_CHARACTERS_PER_TOKEN * limit.total + SLACK:
            return f"{self.characters} characters of text, past {asked} (more than {tokens} can hold)"
        if self.events > MAX_EVENTS_PER_TOKEN * limit.total + SLACK:
            return f"{self.events} events, past {asked} (more than {tokens} can make)"
        return None
