"""A run's folder: matrix.json (the data), matrix.md and matrix.html, and the evidence and check pages.

A writer at the end of the pipeline (records -> model -> renderers -> files): it reads what the run
left in its folder (the records, the instances the token budget left out), and writes what the
model (model.py) holds and the renderers (render.py, evidence.py) draw.  Parameter verdicts come
first (the cell a migrating user looks for), then every check; every cell links to the evidence
file of the instance behind it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .results import read_results
from ..config.targets import Target
from .evidence import write_evidence_pages
from .model import RunReport, build_matrix, report_of
from .render import render_html, render_markdown


def not_run(run_dir: Path) -> list[str]:
    """Check instances left out because the token budget ran out."""
    return sorted(line for path in (run_dir / "not-run").glob("*.txt")
                  for line in path.read_text(encoding="utf-8").splitlines() if line)


def build_report(run_dir: Path, target: Target, base_url: str, started: float, configuration: dict | None = None,
                 history_entries: list[dict] | None = None, finished: float | None = None) -> RunReport:
    """The report of the run in `run_dir`, from its records (and the history, when given); the
    instances left out are listed in not-run.json."""
    left_out = not_run(run_dir)
    if left_out:
        (run_dir / "not-run.json").write_text(json.dumps(left_out, indent=2), encoding="utf-8")
    # the folder's name, unless the configuration names the run (a reused folder gets a new id inside)
    return report_of(build_matrix(read_results(run_dir), target, base_url, started, run_dir.name, left_out,
                                  configuration, history_entries, finished))


def write_run(run_dir: Path, report: RunReport) -> None:
    """The run's matrix files, and the evidence and check pages the run does not have yet."""
    write_matrix(run_dir, report)
    write_evidence_pages(run_dir, report.matrix)


def write_matrix(run_dir: Path, report: RunReport) -> None:
    """matrix.json, .md and .html (a published report links only the evidence it keeps: report.published)."""
    (run_dir / "matrix.json").write_text(json.dumps(report.matrix, indent=2, ensure_ascii=False), encoding="utf-8")
    (run_dir / "matrix.md").write_text(render_markdown(report), encoding="utf-8")
    (run_dir / "matrix.html").write_text(render_html(report), encoding="utf-8")
