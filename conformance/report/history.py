"""The run history: one JSON line per run, appended and never rewritten.

Each entry keeps what a later run is compared with (every check's outcome per model, every
parameter verdict) and what the trend chart plots (the scores).  A line that cannot be read is
skipped and counted, so one damaged line never loses the rest.

Only like runs are compared and plotted together: the same target identity (name and base URL), the
same selection (`--check` patterns, `-k` and `-m` expressions), the same server quirks, the same
injected faults and the same shard (`--shard 2/3`; the shards combined are a whole run).  A run of `chat.stop.*` against a quirked server is never the "previous run" of a
full clean run, nor a point on its trend.

In the pipeline this is a store, an input of the model: it reads and appends entries and tells
which are alike; the entries themselves (model.history_entry), the changes and the trend are
computed by model.py, and drawn by the renderers.
"""

from __future__ import annotations

import json
from pathlib import Path

HISTORY_FORMAT = 2  # 2: each entry records its configuration (what `configuration` compares)


def configuration(run: dict) -> dict | None:
    """What must be equal for two runs to be compared, from a matrix's `run` section or a history entry;
    None for an entry written before configurations were recorded (it could have been anything)."""
    if run.get("format", HISTORY_FORMAT) < 2:
        return None
    selection = run.get("selection") or {}
    faults = run.get("faults") or None
    return {
        "target": run["target"],
        "base_url": run.get("base_url"),
        "selection": {"checks": sorted(selection.get("checks") or []), "keyword": selection.get("keyword") or None,
                      "markers": selection.get("markers") or None},
        "quirks": sorted(run.get("quirks") or []),
        "faults": {"rates": faults.get("rates") or {}, "seed": faults.get("seed")} if faults else None,
        "shard": run.get("shard"),  # a shard is like the same shard only; a combined run is a whole run
    }


def is_like(entry: dict, other: dict) -> bool:
    mine = configuration(entry)
    return mine is not None and mine == configuration(other)


def like_runs(entries: list[dict], run_id: str) -> list[dict]:
    """The runs like the run `run_id`, in history order, up to and including it (none when the history
    does not hold it)."""
    index = next((i for i in range(len(entries) - 1, -1, -1) if entries[i]["run"] == run_id), None)
    if index is None:
        return []
    return [e for e in entries[:index + 1] if is_like(e, entries[index])]


def read(path: Path) -> tuple[list[dict], int]:
    """The entries of a history file, and how many lines could not be read."""
    if not path.is_file():
        return [], 0
    entries, damaged = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            damaged += 1
            continue
        if isinstance(entry, dict) and {"run", "target", "checks"} <= set(entry):
            entries.append(entry)
        else:
            damaged += 1
    return entries, damaged


def append(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")


def previous(entries: list[dict], entry: dict) -> dict | None:
    """The latest earlier run like `entry` (same target identity, selection, quirks and faults), by its
    order in the history."""
    earlier = [e for e in entries if is_like(e, entry) and e["run"] != entry["run"]]
    return earlier[-1] if earlier else None
