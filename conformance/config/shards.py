"""Shards: one run's check instances cut into N stable parts, each run apart (`--shard I/N`) and
combined afterwards (`conformance report --combine-shards`)."""

from __future__ import annotations

import dataclasses
import hashlib
import re

RUN_ID_SUFFIX = re.compile(r"-shard\d+of\d+$")  # what Shard.run_id appends


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1-based): the check instances whose identity hashes to it.

    The identity is the instance's data, not its place in pytest: the check id (stable forever), its
    variant, and the model, mode and path (`instance_identity`; the path is left out of the hash, see
    `shard_of`). The hash is sha256 (Python's `hash`
    is salted per process), so the assignment is the same on every machine and in every run, whatever
    the collection order, the xdist workers, the `--check` or `-k` selection or the other models: an
    instance is in the same shard whenever it runs."""

    index: int
    count: int

    USAGE = "--shard takes I/N, shard I of N with 1 <= I <= N (e.g. 2/3)"

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """The shard `text` names; ValueError (one line, the usage) when it names none."""
        index, slash, count = str(text).strip().partition("/")
        if slash and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count):
            return cls(int(index), int(count))
        raise ValueError(f"{cls.USAGE}, not {text!r}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, identity: str) -> bool:
        return shard_of(identity, self.count) == self.index

    def run_id(self, run_id: str) -> str:
        """A shard's run id: the run's, with the shard (`...-shard2of3`); 1/1 is the whole run."""
        if self.count == 1:
            return run_id
        suffix = f"-shard{self.index}of{self.count}"
        return run_id if run_id.endswith(suffix) else run_id + suffix

    @classmethod
    def of_run(cls, run: dict) -> "Shard | None":
        """The shard a matrix's `run` section says it is; None for a whole run."""
        try:
            return cls.parse(run["shard"]) if run.get("shard") else None
        except ValueError:
            return None


def whole_run_id(run_id: str) -> str:
    """The run id of the run a shard's id (`...-shard2of3`) was cut from."""
    return RUN_ID_SUFFIX.sub("", run_id)


def instance_identity(check_id: str, variant: str | None, model: str, mode: str, path: str) -> str:
    """What names a check instance wherever it runs (the fields of its record, joined by a separator no
    id holds)."""
    return "\x1f".join((check_id, variant or "", model, mode, path))


def shard_of(identity: str, count: int) -> int:
    """The shard (1 to `count`) an instance identity belongs to: the hash of all of it but the path,
    so an instance's SDK and raw HTTP twins run in one shard, where they ask the target the same
    questions once (wire/reuse.py)."""
    kept = identity.rsplit("\x1f", 1)[0]
    return 1 + int.from_bytes(hashlib.sha256(kept.encode("utf-8")).digest()[:8], "big") % count
