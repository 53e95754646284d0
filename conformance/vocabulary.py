"""The suite's closed vocabularies (INTERPRETING.md defines each word): the lowest layer, imported by all.

They are `StrEnum`s, so a member is its word wherever it goes: it equals the string, prints as it,
and is written to JSON as it; the records, matrices and expectations files keep their words.
"""

from __future__ import annotations

import enum


class Level(enum.StrEnum):
    """How binding a check's clause is (RFC 2119)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Outcome(enum.StrEnum):
    """How one check instance ended."""

    PASS = "pass"
    FAIL = "fail"
    UNSUPPORTED = "unsupported"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class Verdict(enum.StrEnum):
    """What a request parameter does on a target, as the checks observed it."""

    BROKEN = "broken"
    REJECTED = "rejected"
    IGNORED = "ignored"
    DEVIATES = "deviates"
    ACCEPTED = "accepted"
    HONOURED = "honoured"
    NOT_MEASURED = "not measured"


class Mode(enum.StrEnum):
    """Whether a request is answered at once or streamed as server-sent events."""

    REGULAR = "regular"
    STREAM = "stream"


class CallPath(enum.StrEnum):
    """How a request is sent: through the official openai client or as raw HTTP."""

    SDK = "sdk"
    HTTP = "http"


# The words alone, for messages and validation ("one of ('regular', 'stream')").
LEVELS = tuple(m.value for m in Level)
OUTCOMES = tuple(m.value for m in Outcome)
MODES = tuple(m.value for m in Mode)
PATHS = tuple(m.value for m in CallPath)
# How a mixed cell reads: the worst outcome of its instances, worst first.
OUTCOME_ORDER = (Outcome.FAIL, Outcome.ERROR, Outcome.INCONCLUSIVE, Outcome.UNSUPPORTED, Outcome.PASS)
# A parameter's verdict over several observations: the worst, worst first.
VERDICT_ORDER = (Verdict.BROKEN, Verdict.REJECTED, Verdict.IGNORED, Verdict.DEVIATES, Verdict.ACCEPTED,
                 Verdict.HONOURED)


def variant_subject(variant: str | None, endpoint: str) -> str | None:
    """What a variant is about: 'chat-temperature=2.5' -> 'temperature', 'chat-user' -> 'user'."""
    if variant is None:
        return None
    return variant.removeprefix(f"{endpoint}-").split("=", 1)[0]
