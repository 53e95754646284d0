"""The run history: one JSON line per run, appended and never rewritten.

Each entry keeps what a later run is compared with (every check's outcome per model, every
parameter verdict) and what the trend chart plots (the scores).  A line that cannot be read is
skipped and counted, so one damaged line never loses the rest.

Only like runs are compared and plotted together: the same target identity (name and base URL), the
same selection (`--check` patterns, `-k` and `-m` expressions), the same server quirks and the same
injected faults.  A run of `chat.stop.*` against a quirked server is never the "previous run" of a
full clean run, nor a point on its trend.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

HISTORY_FORMAT = 2  # 2: each entry records its configuration (what `configuration` compares)
LEVELS = ("MUST", "SHOULD", "extension")


def scores(matrix: dict) -> dict[str, dict]:
    """Per level: check x model cells passed among those judged (pass, fail or error)."""
    counts: dict[str, Counter] = {level: Counter() for level in LEVELS}
    for row in matrix["checks"]:
        level = "extension" if row["extension"] else row["level"]
        if level not in counts:
            continue
        for cell in row["models"].values():
            counts[level][cell["outcome"]] += 1
    out = {}
    for level, c in counts.items():
        judged = c["pass"] + c["fail"] + c["error"]
        out[level] = {"passed": c["pass"], "judged": judged,
                      "share": round(c["pass"] / judged, 4) if judged else None}
    return out


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


def entry_for(matrix: dict) -> dict:
    run = matrix["run"]
    return {
        "format": HISTORY_FORMAT,
        "run": run["id"],
        "target": run["target"],
        "base_url": run.get("base_url"),
        "selection": run.get("selection"),
        "quirks": run.get("quirks", []),
        "faults": run.get("faults"),
        "models": run["models"],
        "finished": run["finished"],
        "outcomes": matrix["summary"]["outcomes"],
        "scores": scores(matrix),
        "checks": {row["id"]: {m: cell["outcome"] for m, cell in row["models"].items()} for row in matrix["checks"]},
        "parameters": {f"{row['endpoint']}.{row['parameter']}": {m: cell["verdict"] for m, cell in row["models"].items()}
                       for row in matrix["parameters"]},
    }


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


def changes(before: dict | None, matrix: dict) -> dict | None:
    """What changed since `before`, per check and model: regressed, fixed, new."""
    if before is None:
        return None
    out: dict = {"previous_run": before["run"], "previous_finished": before.get("finished"),
                 "regressed": [], "fixed": [], "new": []}
    for row in matrix["checks"]:
        old = before["checks"].get(row["id"], {})
        for model, cell in row["models"].items():
            now, then = cell["outcome"], old.get(model)
            item = {"check": row["id"], "model": model, "before": then, "after": now}
            if then is None:
                out["new"].append(item)
            elif then == "pass" and now in ("fail", "error"):
                out["regressed"].append(item)
            elif then in ("fail", "error") and now == "pass":
                out["fixed"].append(item)
    return out


def change_marks(change: dict | None) -> dict[tuple[str, str], str]:
    """(check, model) -> 'regressed' | 'fixed' | 'new', for marking cells."""
    if not change:
        return {}
    return {(i["check"], i["model"]): kind for kind in ("regressed", "fixed", "new") for i in change[kind]}


def trend_svg(entries: list[dict], target: str, width: int = 320, height: int = 90) -> str:
    """An inline SVG of the MUST and SHOULD pass rates over the target's runs (no script, no network)."""
    runs = [e for e in entries if e["target"] == target]
    pad = 18
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='trend' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='pass rate over {len(runs)} runs of "
             f"{html.escape(target, quote=True)}'>",
             f"<rect x='{pad}' y='4' width='{width - 2 * pad}' height='{height - pad - 4}' fill='#f7f9fb' "
             "stroke='#d6dbe3'/>",
             "<text x='2' y='12' font-size='9' fill='#566074'>100%</text>",
             f"<text x='2' y='{height - pad}' font-size='9' fill='#566074'>0%</text>"]
    if not runs:
        parts.append(f"<text x='{pad + 6}' y='{height // 2}' font-size='11' fill='#566074'>no history yet</text>")
    for level, colour in (("MUST", "#1f6feb"), ("SHOULD", "#9a6700")):
        points = []
        for i, e in enumerate(runs):
            share = (e.get("scores", {}).get(level) or {}).get("share")
            if share is None:
                continue
            x = pad + (width - 2 * pad) * (i / max(1, len(runs) - 1) if len(runs) > 1 else 0.5)
            y = 4 + (height - pad - 4) * (1 - share)
            points.append((x, y, e["run"], share))
        if len(points) > 1:
            parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='"
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points) + "'/>")
        for x, y, run, share in points:
            parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'><title>"
                         f"{html.escape(run)}: {level} {share:.0%}</title></circle>")
    parts.append(f"<text x='{pad}' y='{height - 4}' font-size='9' fill='#1f6feb'>MUST</text>"
                 f"<text x='{pad + 40}' y='{height - 4}' font-size='9' fill='#9a6700'>SHOULD</text>"
                 f"<text x='{width - pad}' y='{height - 4}' font-size='9' fill='#566074' text-anchor='end'>"
                 f"{len(runs)} run(s)</text></svg>")
    return "".join(parts)
