"""`conformance report DIR...`: several runs (one per target, say) merged into one publishable folder.

OUT/index.html and OUT/matrix.md: a score per target, declared vs measured parameter verdicts
grouped by endpoint, then every check; each cell links to its evidence, copied to
OUT/runs/<run id>/ so the folder stands on its own.  OUT/matrix.json holds the data.

The writer at the end of the pipeline: it reads each run's matrix.json, has the model build the
merged report (model.merged_report), copies the runs' folders and writes what the renderers
(render_merged.py; matrix.write_matrix and the check pages for a published run) draw.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .evidence import write_check_pages, write_evidence_page
from .matrix import write_matrix
from .model import MERGED_FORMAT, merged_report, published_evidence, report_of
from .render_merged import render_merged_html, render_merged_markdown

__all__ = ["MERGED_FORMAT", "ReportError", "load_run", "merge", "copy_published"]


class ReportError(Exception):
    """A run directory that cannot be merged; the message says which and why."""


def load_run(run_dir: Path) -> dict:
    path = run_dir / "matrix.json"
    if not path.is_file():
        raise ReportError(f"{run_dir}: no matrix.json (is it the directory of a finished run?)")
    try:
        matrix = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(matrix, dict) or not {"run", "parameters", "checks", "summary"} <= set(matrix):
        raise ReportError(f"{path}: not a conformance matrix")
    return matrix


def merge(run_dirs: list[Path], out: Path, history_entries: list[dict] | None = None, publish: bool = False) -> dict:
    """Merge the runs into `out`. `publish`: a folder to commit or host, small enough for it: of each
    run's evidence only what its pages link to and one instance per outcome of each check
    (model.published_evidence); without it, every instance's evidence is copied."""
    matrices = [load_run(d) for d in run_dirs]
    ids = [m["run"]["id"] for m in matrices]
    if len(set(ids)) != len(ids):
        raise ReportError(f"the same run appears twice: {sorted(i for i in ids if ids.count(i) > 1)}")
    out.mkdir(parents=True, exist_ok=True)
    # A folder merged again holds the runs it shows, not those of an earlier merge into it.
    for stale in (out / "runs").glob("*") if (out / "runs").is_dir() else ():
        if stale.is_dir() and stale.name not in ids and stale.resolve() not in {d.resolve() for d in run_dirs}:
            shutil.rmtree(stale, ignore_errors=True)
    for run_dir, matrix in zip(run_dirs, matrices):
        copy = out / "runs" / matrix["run"]["id"]
        if copy.resolve() != run_dir.resolve():
            shutil.rmtree(copy, ignore_errors=True)
            copy.mkdir(parents=True)
            if publish:
                copy_published(run_dir, matrix, copy)
                continue
            for name in ("matrix.html", "matrix.md", "matrix.json"):
                if (run_dir / name).is_file():
                    shutil.copy2(run_dir / name, copy / name)
            for folder in ("evidence", "checks"):  # checks/: every instance of a check, linked from its cells
                if (run_dir / folder).is_dir():
                    shutil.copytree(run_dir / folder, copy / folder)
    report = merged_report(matrices, history_entries, with_history=not publish)
    merged = report.merged
    (out / "matrix.json").write_text(json.dumps(merged, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "matrix.md").write_text(render_merged_markdown(report), encoding="utf-8")
    (out / "index.html").write_text(render_merged_html(report), encoding="utf-8")
    return merged


def copy_published(run_dir: Path, matrix: dict, out: Path) -> None:
    """A run in a published folder: of its evidence only what published_evidence() keeps (page and
    JSON), and its pages rendered to link only that; every instance is still listed by its message."""
    kept = published_evidence(matrix)
    (out / "evidence").mkdir(parents=True, exist_ok=True)
    for relpath in sorted(kept):
        if (run_dir / relpath).is_file():
            shutil.copy2(run_dir / relpath, out / relpath)
            write_evidence_page(out / relpath)  # rendered by this version, whatever wrote the run
    write_matrix(out, report_of(matrix, published=kept))
    write_check_pages(out, matrix, published=kept)
