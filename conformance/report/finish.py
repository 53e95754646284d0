"""The end of a run, one code path for `conformance run` and `pytest suites --target X`: the history
line, the comparison with the target's known deviations, the terminal summary and the exit code."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

EXIT_OK, EXIT_DEVIATIONS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
COMPARISON_FILE = "expectations.json"


@dataclasses.dataclass
class RunEnd:
    """What the end of a run found, for the terminal."""

    matrix: dict
    run_dir: Path
    comparison_lines: list[str] = dataclasses.field(default_factory=list)
    expectations_path: Path | None = None
    notes: list[str] = dataclasses.field(default_factory=list)  # one line each, for stderr


def finish_run(run_dir: Path, matrix: dict, history_path: Path | None, known: dict | None,
               expectations_path: Path | None) -> RunEnd:
    """Append the run to its history (marking what changed) and compare it with its expectations."""
    end = RunEnd(matrix=matrix, run_dir=run_dir, expectations_path=expectations_path)
    if history_path is not None:
        from .matrix import record_history

        end.matrix, damaged = record_history(run_dir, matrix, history_path)
        if damaged:
            end.notes.append(f"conformance: {damaged} unreadable line(s) in {history_path} were skipped")
    (run_dir / COMPARISON_FILE).unlink(missing_ok=True)  # a reused folder must not keep an old comparison
    if known is not None:
        from ..config import expectations

        comparison = expectations.compare(end.matrix, known)
        (run_dir / COMPARISON_FILE).write_text(json.dumps({**comparison.to_json(), "changed": comparison.changed,
                                                           "file": str(expectations_path)}, indent=2),
                                               encoding="utf-8")
        end.comparison_lines = comparison.lines()
    return end


def terminal_lines(end: RunEnd, seconds: float) -> list[str]:
    """The parameter verdicts, the counts, then the deviations by cause and the failing checks (last,
    so that they are what the terminal leaves on screen), the changes and the comparison."""
    from .render import render_summary_lines, render_terminal_lines

    matrix, run_dir = end.matrix, end.run_dir
    models = matrix["run"]["models"]
    lines = ["", f"Parameter verdicts ({matrix['run']['target']}):"]
    width = max(len(f"{p['endpoint']}.{p['parameter']}") for p in matrix["parameters"]) + 2
    lines.append(" " * width + "".join(f"{m[:24]:26}" for m in models))
    for row in matrix["parameters"]:
        label = f"{row['endpoint']}.{row['parameter']}"
        lines.append(f"{label:{width}}" + "".join(f"{row['models'][m]['verdict']:26}" for m in models).rstrip())
    lines += ["", *render_summary_lines(matrix), "", *render_terminal_lines(matrix)]
    change = matrix.get("changes")
    if change:
        lines.append(f"since run {change['previous_run']}: {len(change['regressed'])} regressed, "
                     f"{len(change['fixed'])} fixed, {len(change['new'])} new (check x model)")
    if end.comparison_lines:
        lines += [f"compared with {end.expectations_path}:", *end.comparison_lines]
    lines.append(f"finished in {seconds:.1f}s; matrix: {run_dir / 'matrix.html'} ({run_dir / 'matrix.md'}, "
                 f"{run_dir / 'matrix.json'}); allure results: {run_dir / 'allure-results'}")
    return lines


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
