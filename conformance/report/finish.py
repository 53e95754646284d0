"""The end of a run, one code path for `conformance run` and `pytest suites --target X`: the report
built once from the run's records and its history, the run's files and Allure metadata written from
it, the history line appended, the comparison with the target's known deviations, the terminal
summary and the exit code.

The driver of the pipeline for one run: records and history (history.py) -> model (model.py) ->
renderers (render.py, allure.py) -> files (matrix.py); nothing here computes what a reader sees.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .model import RunReport

# The stages are imported where they are used: the CLI imports this module for its exit codes
# alone, and must start without the suites' modules.

EXIT_OK, EXIT_DEVIATIONS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
COMPARISON_FILE = "expectations.json"


@dataclasses.dataclass
class RunEnd:
    """What the end of a run found, for the terminal."""

    report: "RunReport"
    run_dir: Path
    comparison_lines: list[str] = dataclasses.field(default_factory=list)
    expectations_path: Path | None = None
    notes: list[str] = dataclasses.field(default_factory=list)  # one line each, for stderr

    @property
    def matrix(self) -> dict:
        return self.report.matrix


def finish_run(run_dir: Path, target, base_url: str, started: float, configuration: dict | None,
               history_path: Path | None, known: dict | None, expectations_path: Path | None,
               alluredir: Path | str | None = None, finished: float | None = None) -> RunEnd:
    """Build the run's report (changes and trend from its history), write its files and the Allure
    metadata, append the run to its history and compare it with its expectations."""
    from . import history
    from .allure import write_metadata
    from .matrix import build_report, write_run
    from .model import history_entry

    entries, damaged = history.read(history_path) if history_path is not None else (None, 0)
    report = build_report(run_dir, target, base_url, started, configuration, entries, finished)
    write_run(run_dir, report)
    if alluredir:
        write_metadata(Path(alluredir), report)
    end = RunEnd(report=report, run_dir=run_dir, expectations_path=expectations_path)
    partial = bool(report.matrix["summary"].get("partial"))
    if history_path is not None and partial:  # the next run would read the checks it did not reach as gone
        end.notes.append(f"conformance: a partial run is not added to the history ({history_path})")
    elif history_path is not None:
        history.append(history_path, history_entry(report.matrix))
        if damaged:
            end.notes.append(f"conformance: {damaged} unreadable line(s) in {history_path} were skipped")
    (run_dir / COMPARISON_FILE).unlink(missing_ok=True)  # a reused folder must not keep an old comparison
    if known is not None:
        from ..config import expectations

        comparison = expectations.compare(report.matrix, known, partial=partial)
        (run_dir / COMPARISON_FILE).write_text(json.dumps({**comparison.to_json(), "changed": comparison.changed,
                                                           "file": str(expectations_path)}, indent=2),
                                               encoding="utf-8")
        end.comparison_lines = comparison.lines()
    return end


def terminal_lines(end: RunEnd, seconds: float) -> list[str]:
    """The run's summary for the terminal (render.terminal_summary)."""
    from .render import terminal_summary

    return terminal_summary(end.report, end.run_dir, seconds, end.comparison_lines, end.expectations_path)


def exit_code(run_dir: Path, interrupted: bool = False) -> int:
    """`conformance run`'s exit code, from what the run wrote: with expectations, 1 only when something
    changed against them; without, 1 for any deviation; 3 when incomplete (errors, budget, interrupted)."""
    matrix = json.loads((run_dir / "matrix.json").read_text(encoding="utf-8"))
    summary = matrix["summary"]
    incomplete = bool(summary["outcomes"]["error"] or summary.get("not_run") or interrupted)
    comparison_path = run_dir / COMPARISON_FILE
    if comparison_path.is_file():
        changed = json.loads(comparison_path.read_text(encoding="utf-8"))["changed"]
        return EXIT_DEVIATIONS if changed else EXIT_INCOMPLETE if incomplete else EXIT_OK
    if summary["outcomes"]["fail"]:
        return EXIT_DEVIATIONS
    return EXIT_INCOMPLETE if incomplete else EXIT_OK
