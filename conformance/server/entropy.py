"""What varies from one answer of the reference to the next when the request does not: the sampling
of a request without a seed, the ids of completions and tool calls, and the `created` time.

A served request draws them afresh (`FRESH`). The pruned self-test (conformance/selftest) answers
the same request twice, once by the plain reference and once by a quirked one, and asks whether the
two answers differ: there each answer draws from `Pinned(seed)`, so the two differ only where the
quirk changes what the answer says, never because an id, a clock or a sample came out otherwise.
"""

from __future__ import annotations

import os
import random
import time
import uuid


class Entropy:
    """Fresh draws: a served answer's."""

    def rng(self) -> random.Random:
        """The generator of one unseeded choice."""
        return random.Random(os.urandom(16))

    def hex(self, length: int) -> str:
        """The random part of an id."""
        return uuid.uuid4().hex[:length]

    def now(self) -> int:
        """The `created` of a response (Unix seconds)."""
        return int(time.time())


class Pinned(Entropy):
    """Draws that are a function of `seed` and of their order in one answer."""

    CREATED = 1_700_000_000  # a fixed time, long past: any clock a quirk reads differs from it

    def __init__(self, seed: str):
        self.seed = seed
        self._draws = random.Random(seed)
        self.drawn = 0
        self.sampled = False  # an unseeded choice drew from it: another seed may give another answer

    def rng(self) -> random.Random:
        self.drawn += 1
        return _Watched(self._draws.getrandbits(64), self)

    def hex(self, length: int) -> str:
        self.drawn += 1
        return f"{self._draws.getrandbits(4 * length):0{length}x}"

    def state(self) -> tuple:
        return self._draws.getstate(), self.drawn, self.sampled

    def restore(self, state: tuple) -> None:
        """Go on from `state` (taken from a Pinned of the same seed), as if its draws were made here."""
        draws, self.drawn, self.sampled = state
        self._draws.setstate(draws)

    def now(self) -> int:
        return self.CREATED


class _Watched(random.Random):
    """A choice's generator that tells its Pinned when a draw is made of it (greedy decoding makes none)."""

    def __init__(self, seed: int, owner: Pinned):
        self._owner = owner
        super().__init__(seed)

    def random(self) -> float:
        self._owner.sampled = True
        return super().random()

    def getrandbits(self, k: int) -> int:
        self._owner.sampled = True
        return super().getrandbits(k)


FRESH = Entropy()
