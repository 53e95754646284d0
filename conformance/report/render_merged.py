"""The renderers of a merged report (`conformance report DIR...`): OUT/matrix.md and OUT/index.html.

Last stage of the pipeline (records -> model -> renderers), for several runs: each function takes
the merged model (model.MergedReport: per run its label, scores, headline, deviations and trend;
the columns; every cell with its change mark and link into runs/<run id>/) and only draws it, with
the pieces of a run's own page (render.py).  Nothing here reads the history or computes an outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .terms import share_text
from .render import (CSS, DOCS_TITLE, cell_counts, check_cell_html, deviations_html, deviations_markdown,
                     docs_cell_html, docs_cell_markdown, escape as _e, headline_html, trend_svg, verdict_cell_html,
                     verdict_markdown)

if TYPE_CHECKING:  # pragma: no cover
    from .model import MergedReport


def score_text(score: dict) -> str:
    """A level's score, both bases named: check instances (as the run's own summary) and check x
    model cells (as the history and trend); a matrix from before instances were kept shows cells."""
    cells = f"{share_text(score['passed'], score['judged'])} of cells ({score['passed']}/{score['judged']})"
    instances = score.get("instances")
    if not instances:
        return cells
    return (f"{share_text(instances['passed'], instances['judged'])} of instances "
            f"({instances['passed']}/{instances['judged']}); {cells}")


def _cost(summary: dict) -> str:
    """What the run cost the target: requests sent and tokens reported."""
    tokens = summary.get("tokens") or {}
    return (f"{summary.get('requests', 0)} requests · {tokens.get('prompt', 0)} + {tokens.get('completion', 0)} "
            "tokens")


def _change_summary(change: dict | None) -> str:
    if not change:
        return "first run"
    return (f"since {change['previous_run']}: {len(change['regressed'])} regressed, {len(change['fixed'])} fixed, "
            f"{len(change['new'])} new")


def render_merged_markdown(report: "MergedReport") -> str:
    """The merged matrix in Markdown; without history (a published folder) the scores table has no
    changes column."""
    targets = report.targets
    columns = report.columns
    with_history = report.with_history
    out = ["# Compatibility matrix", "",
           "| target | run | models | MUST | SHOULD | extension | " + ("changes | " if with_history else "")
           + "requests · tokens |", "|---|---|---|---|---|---|" + ("---|" if with_history else "") + "---|"]
    for t in targets:
        s = t.scores
        out.append(f"| {t.label} | `{t.run}` | {', '.join(t.models)} | {score_text(s['MUST'])} | "
                   f"{score_text(s['SHOULD'])} | {score_text(s['extension'])} | "
                   + (f"{_change_summary(t.changes)} | " if with_history else "") + f"{_cost(t.summary)} |")
    out += ["", "Scores: check × model cells passed among those judged (pass, fail, error), per level.", ""]
    out += ["## Deviations", ""]
    for t in targets:
        out += [f"### {t.label}", ""] + deviations_markdown(t.headline, t.causes, t.failing_checks, prefix=t.prefix) + [""]
    label = {t.run: t.label for t in targets}
    for endpoint, rows in report.parameter_rows.items():
        out += [f"## Parameter verdicts: {endpoint}", "",
                "| parameter | " + " | ".join(f"{label[c.run]}: docs | {label[c.run]}: {c.model}" if c.first else
                                              f"{label[c.run]}: {c.model}" for c in columns) + " |",
                "|---|" + "---|" * (len(columns) + len(targets))]
        for row, row_cells in rows:
            cells = []
            for kind, value in row_cells:
                if kind == "declared":
                    cells.append(docs_cell_markdown(*value) if value else "")
                else:
                    cells.append(verdict_markdown(value) if value else "")
            name = f"`{row['parameter']}`" + (" (extension)" if row["kind"] == "extension" else "")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    runs = [t.run for t in targets]
    out += ["## Where the runs differ", "", f"{len(report.differences)} checks whose outcome (worst over "
            "the models) differs between the runs.", "", "| check | level | " + " | ".join(label[r] for r in runs)
            + " |", "|---|---|" + "---|" * len(runs)]
    for d in report.differences:
        out.append(f"| `{d['check']}` | {d['level']} | " + " | ".join(d["outcomes"][r] or "" for r in runs) + " |")
    out += ["", "## Checks", "", "| check | level | " + " | ".join(f"{label[c.run]}: {c.model}" for c in columns)
            + " |", "|---|---|" + "---|" * len(columns)]
    for row in report.checks:
        cells = []
        for c in columns:
            cell = report.cells.get((c.run, row["id"], c.model))
            cells.append(f"[{cell_counts(cell)}]({cell.link})" if cell else "")
        out.append(f"| [`{row['id']}`]({row['clause']}) | {row['level']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def render_merged_html(report: "MergedReport") -> str:
    """The merged page; without history (a published folder, made apart from any history) the
    scores table has no changes and trend columns."""
    targets = report.targets
    columns = report.columns
    with_history = report.with_history
    label = {t.run: t.label for t in targets}
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Compatibility matrix</title>",
             f"<style>{CSS}</style></head><body><h1>Compatibility matrix</h1>",
             "".join(f"<p class='headline {'bad' if t.headline.failed else 'good'}'>"
                     f"<a href='#deviations-{_e(t.run)}'>{_e(t.label)}</a>: {_e(t.headline.text)}</p>"
                     for t in targets),
             "<p class='meta'>Outcomes and verdicts as defined in INTERPRETING.md. Every cell links to its evidence."
             "</p><h2 id='scores'>Scores</h2><table id='scores-table'><thead><tr><th>target</th><th>run</th>"
             "<th>models</th><th>MUST</th><th>SHOULD</th><th>extension</th>"
             + ("<th>changes</th>" if with_history else "") + "<th>requests · tokens</th>"
             + ("<th>trend</th>" if with_history else "") + "</tr></thead><tbody>"]
    for t in targets:
        s = t.scores
        parts.append(f"<tr><td>{_e(t.label)}<div class='msg'>{_e(t.description)}</div></td>"
                     f"<td><a href='runs/{_e(t.run)}/matrix.html'><code>{_e(t.run)}</code></a></td>"
                     f"<td>{_e(', '.join(t.models))}</td><td>{_e(score_text(s['MUST']))}</td>"
                     f"<td>{_e(score_text(s['SHOULD']))}</td><td>{_e(score_text(s['extension']))}</td>"
                     + (f"<td>{_e(_change_summary(t.changes))}</td>" if with_history else "")
                     + f"<td>{_e(_cost(t.summary))}</td>"
                     + (f"<td>{trend_svg(t.trend, t.target)}</td>" if with_history else "") + "</tr>")
    parts.append("</tbody></table><p class='msg'>Score: check × model cells passed among those judged (pass, fail, "
                 "error), per level"
                 + ("; the trend plots it over the runs like this one in the history (same target, base URL, "
                    "selection, quirks and faults)." if with_history else ".") + "</p>")
    parts.append("<h2 id='deviations'>Deviations</h2>")
    for t in targets:
        parts.append(f"<h3 id='deviations-{_e(t.run)}'>{_e(t.label)}</h3>{headline_html(t.headline)}"
                     + deviations_html(t.causes, t.failing_checks, prefix=t.prefix, heading="h4"))
    header_top = "".join(f"<th colspan='{len(t.models) + 1}'>{_e(t.label)}</th>" for t in targets)
    header = "".join(f"<th title='{_e(DOCS_TITLE)}'>docs</th>" * c.first + f"<th>{_e(c.model)}</th>" for c in columns)
    for endpoint, rows in report.parameter_rows.items():
        parts.append(f"<h2 id='parameters-{endpoint}'>Parameter verdicts: {endpoint}</h2>"
                     f"<table class='parameter-verdicts'><thead><tr><th rowspan='2'>parameter</th>{header_top}</tr>"
                     f"<tr>{header}</tr></thead><tbody>")
        for row, row_cells in rows:
            cells = []
            for kind, value in row_cells:
                if kind == "declared":
                    cells.append(docs_cell_html(*value) if value else "<td></td>")
                elif value is None:
                    cells.append("<td></td>")
                else:
                    cells.append(verdict_cell_html(value))
            name = f"<a href='{_e(row['clause'])}'><code>{_e(row['parameter'])}</code></a>"
            if row["kind"] == "extension":
                name += " <em>extension</em>"
            parts.append(f"<tr><td>{name}</td>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    runs = [t.run for t in targets]
    parts.append(f"<h2 id='differences'>Where the runs differ</h2><p>{len(report.differences)} checks whose "
                 "outcome (worst over the models) differs between the runs.</p><table id='differences-table'>"
                 "<thead><tr><th>check</th><th>level</th>" + "".join(f"<th>{_e(label[r])}</th>" for r in runs)
                 + "</tr></thead><tbody>")
    for d in report.differences:
        parts.append(f"<tr><td><code>{_e(d['check'])}</code></td><td>{_e(d['level'])}</td>" + "".join(
            f"<td class='{_e(d['outcomes'][r] or '')}'>{_e(d['outcomes'][r] or '')}</td>" for r in runs) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<h2 id='checks'>Checks</h2><table id='checks-table'><thead><tr><th>check</th><th>level</th>"
                 + "".join(f"<th>{_e(label[c.run])}<br>{_e(c.model)}</th>" for c in columns) + "</tr></thead><tbody>")
    for row in report.checks:
        cells = []
        for c in columns:
            cell = report.cells.get((c.run, row["id"], c.model))
            if cell is None:
                cells.append("<td></td>")
                continue
            cells.append(check_cell_html(cell))
        level = row["level"] + (" · extension" if row["extension"] else "")
        parts.append(f"<tr><td><a href='{_e(row['clause'])}'><code>{_e(row['id'])}</code></a></td>"
                     f"<td>{_e(level)}</td>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></body></html>\n")
    return "".join(parts)

