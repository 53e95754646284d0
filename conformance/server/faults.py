"""Fault injection: the transient trouble live providers cause, at seeded rates.

    conformance serve --faults 429=0.2,503=0.1,reset=0.05,stall=0.02 --fault-seed 7

Kinds: an HTTP status among 408, 429, 500-504 (answered in OpenAI's envelope, 429 with
Retry-After), `reset` (the connection is dropped without a response), `cut` (a 200 status line
and headers, then the connection closes before any body byte, as a proxy that loses its upstream
does) and `stall` (the server stops answering for `stall_seconds`, mid-stream for a streamed
request, then drops the connection).  Unlike quirks, faults are not deviations: a run through them must give the same
verdicts as a clean run, or `error` where the retry budget ran out.
"""

from __future__ import annotations

import dataclasses
import random
import threading

STATUS_KINDS = {"408", "429", "500", "502", "503", "504"}
KINDS = STATUS_KINDS | {"reset", "cut", "stall"}


class FaultSpecError(ValueError):
    """A --faults value that cannot be read; the message says what is wrong."""


@dataclasses.dataclass
class Faults:
    rates: dict[str, float]
    seed: int = 0
    stall_seconds: float = 5.0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {kind: 0 for kind in self.rates}

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        with self._lock:
            roll = self._random.random()
            for kind, rate in self.rates.items():
                if roll < rate:
                    self.injected[kind] += 1
                    return kind
                roll -= rate
        return None


def parse_faults(spec: str, seed: int = 0, stall_seconds: float = 5.0) -> Faults:
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, sep, value = item.partition("=")
        if not sep or kind not in KINDS:
            raise FaultSpecError(f"--faults: '{item}' is not KIND=RATE with KIND one of {', '.join(sorted(KINDS))}")
        try:
            rate = float(value)
        except ValueError:
            raise FaultSpecError(f"--faults: the rate in '{item}' is not a number") from None
        if not 0 <= rate <= 1:
            raise FaultSpecError(f"--faults: the rate in '{item}' is not between 0 and 1")
        rates[kind] = rate
    if sum(rates.values()) > 1:
        raise FaultSpecError("--faults: the rates add up to more than 1")
    return Faults(rates, seed, stall_seconds)
