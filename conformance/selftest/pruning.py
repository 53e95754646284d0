"""Which check instances a quirk can change: the argument that lets the self-test re-judge only those.

A check instance's outcome is a function of the answers it judged: the requests it sent follow from
the answers before them (the checks draw nothing at random and read no clock), and its verdict from
all of them. The baseline run (the plain reference) records, for every instance, each request its
outcome rests on: those it sent, those answered from another instance's identical request, and the
shared ones it adopted (a greedy baseline another instance sent). For a quirk, each of those requests
is answered twice without a socket (server/offline.py), by the plain reference and by the quirked
one, with the same pinned draws for ids, times and unseeded sampling (server/entropy.py). Where every
answer an instance rests on comes back byte for byte the same, write for write, the quirked server
would have given that instance, step by step, the answers the baseline gave it: its outcome is the
baseline's, and it is not run again. Every other instance is re-judged under pytest.

What this argument does not cover is never pruned:
- a quirk that makes an answer depend on the requests before it (the drift variations count how often
  a request came) or on the requests in flight beside it (a stream cut when another waits, a stream
  silent until its client leaves): its whole run is made;
- an instance the baseline did not pass: it is re-judged;
- an instance that reads what the server kept (a stored response read back, deleted or continued by
  previous_response_id): one request answered alone, without the requests before it, cannot show it;
- sampling without a seed: the two servers draw the same sample, so a quirk that changes what is
  sampled, or only some samples, shows as a change on them; such a request is answered under
  SAMPLED_ROUNDS seeds, and one difference under any makes it changed.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from ..server.http import DEFAULT_MODELS
from ..server.model import ToyModel
from ..server.offline import Answered, OfflineServer, Request
from ..server.quirks import Quirk, registry

# Behaviour fields that make an answer depend on the requests that came before it.
# A stream cut when another request waits, and a stream silent until its client leaves, are answered
# otherwise over a socket, with other requests in flight, than one request at a time without one.
STATEFUL_BEHAVIOUR = ("drift", "streams_interrupted", "silent_with")
SAMPLED_ROUNDS = 3  # seeds a request whose plain answer sampled without a seed is answered under


def replayable(quirk: Quirk) -> bool:
    """Whether the quirked server answers a request the same whatever came before it."""
    return not any(quirk.behaviour.get(name) for name in STATEFUL_BEHAVIOUR)


def reads_kept(request: Request) -> bool:
    """Whether a request's answer depends on what the server kept from earlier ones (a stored response)."""
    return request.path.startswith("/v1/responses/") or '"previous_response_id"' in request.body


def _seed(request: Request, round_: int) -> str:
    return f"{round_}|{request.method} {request.path}|{request.credential}|{request.body}"


@dataclasses.dataclass(frozen=True)
class Pruned:
    """A quirk's share of the baseline's instances: which to re-judge, and why the rest are not."""

    quirk: str
    rerun: tuple[str, ...]  # node ids, in the baseline's order
    requests: int  # distinct requests the baseline's instances rest on
    changed: int  # of which the quirk answers otherwise
    instances: int  # the baseline's instances


class Pruner:
    """The baseline run's requests, their plain answers, and what each quirk changes of them.

    `records`: the baseline run's result records, made with --record-requests (each lists the
    requests its outcome rests on under "replay")."""

    def __init__(self, records: Iterable[dict]):
        self.records = list(records)
        self._rests_on = {r["nodeid"]: frozenset(Request(*q) for q in r.get("replay", ())) for r in self.records}
        # A model is a function of its name: one instance of each, shared, keeps what it computed.
        self._models = {name: ToyModel(name) for name in DEFAULT_MODELS}
        self._generations: dict = {}
        plain = OfflineServer((), self._models, self._generations)
        try:
            self._plain: dict[tuple[Request, int], Answered] = {}
            for request in sorted({q for qs in self._rests_on.values() for q in qs}, key=lambda q: _seed(q, 0)):
                self._plain[request, 0] = first = plain.answer(request, _seed(request, 0))
                for round_ in range(1, SAMPLED_ROUNDS if first.sampled else 1):
                    self._plain[request, round_] = plain.answer(request, _seed(request, round_))
        finally:
            plain.close()
        self.requests = {request for request, _ in self._plain}
        # Instances resting on what the server kept (stateful): answered alone, their requests say nothing.
        self._stateful = {node for node, requests in self._rests_on.items() if any(map(reads_kept, requests))}

    def __getstate__(self) -> dict:
        # For another process (killmatrix._judged_again): the generations go along, the models are made
        # again there (what they computed is a cache, and theirs is not picklable).
        return {k: v for k, v in self.__dict__.items() if k != "_models"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._models = {name: ToyModel(name) for name in DEFAULT_MODELS}

    def changed(self, quirk: Quirk) -> set[Request]:
        """The baseline's requests the quirked server answers otherwise than the plain one."""
        server = OfflineServer((quirk.name,), self._models, self._generations)
        changed: set[Request] = set()
        try:
            for (request, round_), answer in self._plain.items():
                if request not in changed and server.answer(request, _seed(request, round_)) != answer:
                    changed.add(request)
        finally:
            server.close()
        return changed

    def prune(self, quirk: Quirk) -> Pruned:
        """The instances a quirk can change: all of them unless it is replayable; else those resting
        on a request it answers otherwise, and those the baseline did not pass."""
        if not replayable(quirk):
            changed = self.requests
            rerun = [r["nodeid"] for r in self.records]
        else:
            changed = self.changed(quirk)
            rerun = [r["nodeid"] for r in self.records
                     if r["outcome"] not in ("pass", "unsupported") or self._rests_on[r["nodeid"]] & changed
                     or r["nodeid"] in self._stateful]
        return Pruned(quirk.name, tuple(rerun), len(self.requests), len(changed), len(self.records))


def prune_each(pruner: Pruner, names: list[str]) -> list[Pruned]:
    """`pruner.prune` of each quirk named (a task for another process: a quirk's functions do not pickle)."""
    quirks = registry()
    return [pruner.prune(quirks[name]) for name in names]
