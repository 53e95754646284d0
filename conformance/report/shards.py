"""`conformance report --combine-shards DIR...`: the shards of one run (`conformance run --shard I/N`, run
in parallel jobs, on other machines) made one run folder, as if the run had not been split.

The shards' records, evidence, budget leftovers and Allure results are put together in one folder,
and the end of a run (finish.finish_run) makes it a run like any other by the same pipeline:
records -> model -> renderers -> files, the history line appended, the comparison with the target's
expectations. The target is the one the shards' matrices recorded (model.target_of_matrix), so the
combined matrix is the one the whole run would have written. The shards must be complete (every I of
N, one N, one target and configuration, one suite version); what is not is said in one line each,
and the rest is still combined.
"""

from __future__ import annotations

import calendar
import dataclasses
import shutil
import time
from pathlib import Path

from ..config.shards import Shard, whole_run_id
from .finish import RunEnd, finish_run
from .history import configuration
from .merge import ReportError, load_run
from .model import target_of_matrix
from .results import read_results

# What a run folder holds that the combined run writes afresh (a reused folder starts clean).
WRITTEN = ("results", "evidence", "checks", "not-run", "allure-results")
WRITTEN_FILES = ("matrix.json", "matrix.md", "matrix.html", "not-run.json", "expectations.json")


@dataclasses.dataclass
class Combined:
    """The combined run's end (report, comparison) and what was wrong with the shards, one line each."""

    end: RunEnd
    run_id: str
    count: int
    combined: list[int]
    problems: list[str]

    @property
    def complete(self) -> bool:
        return not self.problems


def _epoch(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def _like(run: dict) -> dict:
    return {k: v for k, v in (configuration(run) or {}).items() if k != "shard"}


def combine_shards(shard_dirs: list[Path], out: Path, history_path: Path | None, known: dict | None,
                   expectations_path: Path | None) -> Combined:
    """Combine the shards in `shard_dirs` into the run folder `out` (ReportError when none can be)."""
    matrices = [load_run(d) for d in shard_dirs]
    problems: list[str] = []
    kept: dict[int, tuple[Path, dict]] = {}
    first = None
    for run_dir, matrix in zip(shard_dirs, matrices):
        run = matrix["run"]
        shard = Shard.of_run(run)
        if shard is None:
            raise ReportError(f"{run_dir}: not a shard (a run with --shard I/N); give only the shards of one run")
        if out.resolve() == run_dir.resolve():
            raise ReportError(f"{run_dir}: the combined run cannot be written over one of its shards; choose --out")
        if first is None:
            first = (run_dir, matrix, shard.count)
        _, head, count = first
        if _like(run) != _like(head["run"]):
            problems.append(f"{run_dir} is not a shard of the same run as {first[0]} (target, base URL, selection, "
                            "quirks or faults differ): left out")
        elif shard.count != count:
            problems.append(f"{run_dir} is shard {shard.index} of {shard.count}, the others are of {count}: left out")
        elif shard.index in kept:
            problems.append(f"shard {shard.index} of {count} given twice ({kept[shard.index][0]} and {run_dir}): "
                            f"{run_dir} left out")
        else:
            kept[shard.index] = (run_dir, matrix)
    _, head, count = first
    versions = sorted({m["run"].get("suite_version") for _, m in kept.values()} - {None})
    if len(versions) > 1:
        problems.append(f"the shards were run by different suite versions ({', '.join(versions)}): their checks "
                        "may not add up to one run")
    missing = [i for i in range(1, count + 1) if i not in kept]
    if missing:
        problems.append(f"shard(s) {', '.join(map(str, missing))} of {count} missing: the combined run holds "
                        f"shard(s) {', '.join(map(str, sorted(kept)))} only")
    nodeids: dict[str, int] = {}
    for index, (run_dir, _) in sorted(kept.items()):
        for record in read_results(run_dir):
            nodeids.setdefault(record["nodeid"], index)
            if nodeids[record["nodeid"]] != index:
                problems.append(f"{record['nodeid']} is in shards {nodeids[record['nodeid']]} and {index}: the shards "
                                "were not cut from one run")
                break

    for name in WRITTEN:
        shutil.rmtree(out / name, ignore_errors=True)
    for name in WRITTEN_FILES:
        (out / name).unlink(missing_ok=True)
    for folder in ("results", "not-run"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for index, (run_dir, _) in sorted(kept.items()):
        for folder, pattern in (("results", "*.jsonl"), ("not-run", "*.txt")):  # one file per shard and worker
            for path in sorted((run_dir / folder).glob(pattern)):
                shutil.copy2(path, out / folder / f"shard{index}-{path.name}")
        for folder in ("evidence", "allure-results"):  # named by nodeid digest and uuid: no two shards collide
            if (run_dir / folder).is_dir():
                shutil.copytree(run_dir / folder, out / folder, dirs_exist_ok=True)

    runs = [m["run"] for _, m in kept.values()]
    head_run = kept[min(kept)][1]["run"]
    run_id = whole_run_id(head_run["id"])
    config = {"id": run_id, **{k: head_run.get(k) for k in ("selection", "quirks", "faults")},
              # what ran the shards, not this machine
              **{k: head_run[k] for k in ("suite_version", "openai_sdk", "python") if k in head_run},
              "shards": {"count": count, "combined": sorted(kept), "missing": missing,
                         "runs": [m["run"]["id"] for _, (_, m) in sorted(kept.items())]}}
    alluredir = out / "allure-results"
    end = finish_run(out, target_of_matrix(head), head_run["base_url"], min(_epoch(r["started"]) for r in runs),
                     config, history_path, known, expectations_path, alluredir if alluredir.is_dir() else None,
                     finished=max(_epoch(r["finished"]) for r in runs))
    return Combined(end=end, run_id=run_id, count=count, combined=sorted(kept), problems=problems)
