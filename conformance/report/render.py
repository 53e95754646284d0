"""The renderers of one run: the terminal summary, matrix.md and matrix.html (one self-contained
page, no external assets), and the pieces the merged report draws with (render_merged.py).

The last stage of the pipeline (records -> model -> renderers): each function takes the report
model (model.RunReport, or its parts) and only draws it; what a cell says, which cells changed,
the headline counts, the trend points were all computed once by model.py.  Nothing here reads the
history or computes an outcome.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .terms import CONTROL_PICTURES, cause_name, changed_on_purpose, check_page, evidence_page, share_text

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from .model import CheckCell, Headline, RunReport, TrendPoint

# Plain words and marks that every font has: no emoji (a default headless browser shows them as
# empty boxes). Markdown has no colours, so what is wrong is in capitals.
VERDICT_SYMBOL = {"honoured": "honoured", "ignored": "**IGNORED**", "rejected": "**REJECTED**",
                  "broken": "**BROKEN**", "deviates": "**DEVIATES**", "accepted": "accepted",
                  "not measured": "not measured"}
CHANGE_SYMBOL = {"regressed": "↓ regressed", "fixed": "↑ fixed", "new": "+ new"}
OUTCOME_SYMBOL = {"pass": "pass", "fail": "**FAIL**", "unsupported": "unsupported",
                  "inconclusive": "inconclusive", "error": "**ERROR**"}
OUTCOME_LABEL = {o: o for o in OUTCOME_SYMBOL}
TERMINAL_LIMIT = 20  # failing checks listed in the terminal before "and K more"


def cell_counts(cell: "CheckCell", symbols: dict[str, str] = OUTCOME_SYMBOL) -> str:
    """A check cell's text: its outcome, and the counts behind it when there are several instances."""
    total = cell.total
    if len(cell.counts) == 1:
        return f"{symbols[cell.outcome]} {total}/{total}"  # a lone instance too: "pass 1/1", never a bare "pass"
    return f"{symbols[cell.outcome]} ({', '.join(f'{k} {v}' for k, v in cell.counts)})"


def _one_line(text: str, width: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _instance(i: dict) -> str:
    variant = f" {i['variant']}" if i.get("variant") else ""
    return f"{variant} [{i['model']} · {i['mode']} · {i['path']}]"


def render_terminal_lines(report: "RunReport", limit: int = TERMINAL_LIMIT) -> list[str]:
    """What a terminal shows after a run: the deviations by cause, then the failing checks."""
    causes = report.causes
    failing = report.failing_checks
    lines = [report.headline.text]
    if causes:
        lines.append("Deviations by cause (what the target does wrong, and the checks that show it):")
        for c in causes:
            lines.append(f"  {c['id']:9} {c['level']:6} [{c['category']}] {_one_line(cause_name(c), 150)}")
            e = c["example"]
            lines.append(f"  {'':16}e.g. {e['check']}{_instance(e)}: {_one_line(e['message'], 120)}")
    if failing:
        shown = failing[:limit]
        lines.append(f"Failing checks ({len(failing)}):")
        for f in shown:
            first = f["first"]
            count = f"{f['failed']}/{f['instances']} failed" + (f", {f['errors']} error" if f["errors"] else "")
            lines.append(f"  {f['level']:6} {f['id']}  {count}; e.g.{_instance(first)} {first['outcome']}: "
                         f"{_one_line(first['message'], 120)}")
        if len(failing) > limit:
            lines.append(f"  and {len(failing) - limit} more (see the matrix)")
    if report.failing_parameters:
        lines.append("Parameters that do not work as OpenAI's do:")
        for p in report.failing_parameters:
            why = (", ".join(f"{f['level']} {f['check']}" for f in p.failing) if p.failing else "; ".join(p.notes))
            lines.append(f"  {p.endpoint}.{p.parameter} [{', '.join(p.models)}]: {p.verdict}"
                         + (f": {_one_line(why, 130)}" if why else ""))
    return lines


def render_summary_lines(report: "RunReport") -> list[str]:
    s = report.summary
    o = s["outcomes"]
    lines = [f"{s['instances']} check instances of {s['checks']} checks: "
             + ", ".join(f"{o[k]} {k}" for k in ("pass", "fail", "unsupported", "inconclusive", "error")),
             f"{s['requests']} requests ({report.requests_per_instance:.2f} per check instance), "
             f"{s['retries']} retries"]
    tokens = s.get("tokens")
    if tokens:
        lines.append(f"tokens: {tokens['prompt']} prompt + {tokens['completion']} completion"
                     + (f" ({tokens['unmetered']} responses reported no usage)" if tokens["unmetered"] else ""))
    if s.get("confirmed_alone"):
        alone = s["confirmed_alone"]
        lines.append(f"confirmed alone: {alone['instances']} check instances that failed or were inconclusive beside "
                     f"other requests of the run were run again alone; {alone['passed_alone']} of them passed")
    if s.get("not_run"):
        lines.append(f"not run: {s['not_run']} check instances (the token budget ran out; listed in not-run.json)")
    if s.get("partial"):
        partial = s["partial"]
        lines.append(f"partial run: {partial['judged']} of {partial['collected']} check instances judged, "
                     f"{partial['reason']}; its verdicts are of those only")
    if report.categories:
        lines.append("failures by category: " + ", ".join(f"{n} {c}" for c, n in report.categories))
    for level in report.levels:
        lines.append(f"{level.level}: {level.passed}/{level.judged} check instances passed "
                     f"({share_text(level.passed, level.judged)}); check x model cells "
                     f"{level.cells_passed}/{level.cells_judged} ({share_text(level.cells_passed, level.cells_judged)})")
    return lines


def terminal_summary(report: "RunReport", run_dir: "Path", seconds: float, comparison_lines: list[str] = (),
                     expectations_path=None) -> list[str]:
    """The parameter verdicts, the counts, then the deviations by cause and the failing checks (last,
    so that they are what the terminal leaves on screen), the changes and the comparison."""
    models = report.models
    changed = changed_on_purpose(report.run)
    lines = ["", *([changed] if changed else []), f"Parameter verdicts ({report.run['target']}):"]
    width = max(len(f"{p['endpoint']}.{p['parameter']}") for p in report.matrix["parameters"]) + 2
    lines.append(" " * width + "".join(f"{m[:24]:26}" for m in models))
    for row in report.matrix["parameters"]:
        label = f"{row['endpoint']}.{row['parameter']}"
        lines.append(f"{label:{width}}" + "".join(f"{row['models'][m]['verdict']:26}" for m in models).rstrip())
    lines += ["", *render_summary_lines(report), "", *render_terminal_lines(report)]
    change = report.changes
    if change:
        lines.append(f"since run {change['previous_run']}: {len(change['regressed'])} regressed, "
                     f"{len(change['fixed'])} fixed, {len(change['new'])} new (check x model)")
    if comparison_lines:
        lines += [f"compared with {expectations_path}:", *comparison_lines]
    shard = report.run.get("shard")
    if shard:
        index, _, count = shard.partition("/")
        lines.append(f"shard {index} of {count}: this run holds only the shard's instances; "
                     "`conformance report --combine-shards` makes the shards' folders one run")
    lines.append(f"finished in {seconds:.1f}s; matrix: {run_dir / 'matrix.html'} ({run_dir / 'matrix.md'}, "
                 f"{run_dir / 'matrix.json'}); allure results: {run_dir / 'allure-results'}")
    return lines


def verdict_markdown(cell: dict) -> str:
    """A parameter verdict cell (of the matrix data), linked to its evidence and naming its failing checks."""
    text = VERDICT_SYMBOL[cell["verdict"]]
    if cell["evidence"]:
        text = f"[{text}]({evidence_page(cell['evidence'][0])})"
    failing = cell.get("failing") or []
    if failing:
        text += ": " + ", ".join(f"[`{f['check']}`]({evidence_page(f['evidence'])}) {f['level']}" for f in failing[:3])
        text += f" and {len(failing) - 3} more" if len(failing) > 3 else ""
    return text


def deviations_markdown(headline: "Headline", causes: list[dict], failing: list[dict], prefix: str = "") -> list[str]:
    """The first screen of the Markdown matrix: the headline, the causes, the failing checks; `prefix`
    places the links of a run copied into a merged report (runs/<run id>/)."""
    out = [f"**{headline.text}**", ""]
    if causes:
        out += ["## Deviations by cause", "", "| cause | level | instances | checks | category | example |",
                "|---|---|---|---|---|---|"]
        for c in causes:
            e = c["example"]
            checks = ", ".join(f"[`{ch}`]({prefix}{check_page(ch)})" for ch in c["checks"][:6])
            checks += f" and {len(c['checks']) - 6} more" if len(c["checks"]) > 6 else ""
            out.append(f"| {c['id']}: {_md(cause_name(c))} | {c['level']} | {c['instances']} | {checks} | "
                       f"{c['category']} | [{_md(_one_line(e['message'], 140))}]({prefix}{evidence_page(e['evidence'])}) |")
    if failing:
        out += ["", "## Failing checks", "", "| check | level | failed | first failure |", "|---|---|---|---|"]
        for f in failing:
            first = f["first"]
            out.append(f"| [`{f['id']}`]({prefix}{check_page(f['id'])}) | {f['level']} | {f['failed']}/{f['instances']}"
                       + (f", {f['errors']} error" if f["errors"] else "")
                       + f" | [{_md(_instance(first).strip())}: {_md(_one_line(first['message'], 140))}]"
                         f"({prefix}{evidence_page(first['evidence'])}) |")
    return out


def md(text: str) -> str:
    """Text for a Markdown table cell: its pipes escaped."""
    return str(text).replace("|", "\\|")


_md = md


def render_markdown(report: "RunReport") -> str:
    """The run's matrix in Markdown; a failed instance whose evidence a published folder does not keep
    is listed without a link."""
    matrix = report.matrix
    run = report.run
    models = report.models
    out = [f"# Compatibility matrix: {run['target']}", "",
           f"- Target: {run['description'] or run['target']} ({run['base_url']})",
           *([f"- **{changed_on_purpose(run)}**"] if changed_on_purpose(run) else []),
           f"- Run: `{run['id']}`, {run['started']} to {run['finished']}",
           f"- Suite {run['suite_version']}, openai SDK {run['openai_sdk']}; outcomes as defined in {run['definitions']}",
           ""]
    out += deviations_markdown(report.headline, report.causes, report.failing_checks)
    out += ["", "## Summary", ""] + [f"- {line}" for line in render_summary_lines(report)]
    out += ["", "## Parameter verdicts", "",
            "| endpoint | parameter | docs | " + " | ".join(models) + " |",
            "|---|---|---|" + "---|" * len(models)]
    for row in matrix["parameters"]:
        name = f"`{row['parameter']}`" + (" (extension)" if row["kind"] == "extension" else "")
        cells = [verdict_markdown(row["models"][m]) for m in models]
        out.append(f"| {row['endpoint']} | {name} | {docs_cell_markdown(row['declared'], row.get('docs'))} | "
                   + " | ".join(cells) + " |")
    out += changes_markdown(report.changes)
    out += ["", "## Checks", "", "| check | level | requests · tokens | " + " | ".join(models) + " |",
            "|---|---|---|" + "---|" * len(models)]
    for row in matrix["checks"]:
        cells = []
        for m in models:
            cell = report.cells.get((row["id"], m))
            mark = f" {CHANGE_SYMBOL[cell.change]}" if cell and cell.change else ""
            cells.append(f"[{cell_counts(cell)}]({cell.link}){mark}" if cell else "")
        level = row["level"] + (" ext" if row["extension"] else "")
        out.append(f"| [`{row['id']}`]({row['clause']}) | {level} | {_check_cost(row)} | " + " | ".join(cells) + " |")
    if report.failed_instances:
        out += ["", "## Every failed instance", ""]
        for f in report.failed_instances:
            i = f.instance
            link = f" ([evidence]({evidence_page(f.evidence)}))" if f.linked else ""
            cause = f" ({i['cause']})" if i.get("cause") else ""  # its row in "Deviations by cause"
            out.append(f"- {OUTCOME_SYMBOL[i['outcome']]} `{f.check}`{_instance(i)}{cause}: {_md(i['message'])}{link}")
    return "\n".join(out) + "\n"


def _check_cost(row: dict) -> str:
    """Requests one check sent over all its instances, and the tokens the target reported for them; the
    answers it judged that other instances' requests got ("reused": not sent again, still judged) are
    counted apart, so that "0 · 0" never reads as if the check judged nothing."""
    sent = row.get("requests", 0)
    judged = sum(i.get("requests", 0) for i in row.get("instances", ()))
    reused = f" (+{judged - sent} reused)" if judged > sent else ""
    return f"{sent}{reused} · {row.get('tokens', 0)}"


def check_cell_html(cell: "CheckCell") -> str:
    """One check's cell: the outcome (linked to the evidence), and the change since the previous run."""
    change = cell.change
    mark = f"<span class='mark {change}'>{_e(CHANGE_SYMBOL[change])}</span>" if change else ""
    # The check's page lists every instance the cell stands for; a lone instance links to its evidence.
    return (f"<td class='{cell.outcome}'><a href='{_e(cell.link)}' "
            f"title='{_e(cell.message)}'>{_e(cell_counts(cell, OUTCOME_LABEL))}</a>{mark}</td>")


def changes_markdown(change: dict | None) -> list[str]:
    if not change:
        return []
    out = ["", f"## Changes since run `{change['previous_run']}`", "",
           f"{len(change['regressed'])} regressed, {len(change['fixed'])} fixed, {len(change['new'])} new", ""]
    for kind in ("regressed", "fixed"):
        for item in change[kind]:
            out.append(f"- {CHANGE_SYMBOL[kind]}: `{item['check']}` [{item['model']}] {item['before']} -> {item['after']}")
    return out


def changes_html(change: dict | None) -> str:
    if not change:
        return ""
    items = "".join(f"<li class='{kind}'>{_e(CHANGE_SYMBOL[kind])}: <code>{_e(i['check'])}</code> [{_e(i['model'])}] "
                    f"{_e(i['before'])} → {_e(i['after'])}</li>" for kind in ("regressed", "fixed") for i in change[kind])
    return (f"<h2 id='changes'>Changes since run <code>{_e(change['previous_run'])}</code></h2>"
            f"<p>{len(change['regressed'])} regressed, {len(change['fixed'])} fixed, {len(change['new'])} new "
            f"(check × model)</p><ul class='changes'>{items}</ul>")


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2430;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{margin-top:2rem;font-size:1.2rem}
table{border-collapse:collapse;margin:.5rem 0;min-width:50%}th,td{border:1px solid #d6dbe3;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f1f4f8;position:sticky;top:0}td a{color:inherit;text-decoration:none}td a:hover{text-decoration:underline}
.honoured,.pass{background:#e3f6e8}.accepted{background:#eef7f0}.ignored,.inconclusive{background:#fff6d6}.rejected,.unsupported{background:#eef0f3}
.broken,.fail{background:#fde2e1}.error{background:#fbe7cf}.not-measured{color:#7a8494}
.meta{color:#566074}.summary li{margin:.1rem 0}code{font-size:.92em}.msg{color:#566074;font-size:.9em;max-width:46rem}
.legend span{display:inline-block;padding:.05rem .45rem;margin-right:.3rem;border-radius:3px}
.mark{font-size:.8em;font-weight:600;margin-left:.3rem}.mark.regressed,li.regressed{color:#b42318}
.mark.fixed,li.fixed{color:#1a7f37}.mark.new{color:#566074}.trend{display:block;margin:.4rem 0}
.deviates{background:#fde9d4}.why{font-size:.85em;margin-top:.15rem}.why a{text-decoration:underline}
.headline{font-size:1.1rem;font-weight:600;padding:.6rem .8rem;border-radius:4px;margin:.8rem 0}
.headline.bad{background:#fde2e1;color:#8a1c14;border-left:6px solid #b42318}
.headline.good{background:#e3f6e8;color:#14532d;border-left:6px solid #1a7f37}
"""


def escape(value) -> str:
    """Text for HTML (an attribute or an element): escaped, C0 controls shown as control pictures."""
    return html.escape(str(value), quote=True).translate(CONTROL_PICTURES)


_e = escape


def headline_html(headline: "Headline") -> str:
    return f"<p id='headline' class='headline {'bad' if headline.bad else 'good'}'>{_e(headline.text)}</p>"


def _level_class(level: str) -> str:
    """A MUST failure reads red; SHOULD and MAY amber."""
    return "fail" if level == "MUST" else "ignored"


def deviations_html(causes: list[dict], failing: list[dict], prefix: str = "", heading: str = "h2") -> str:
    """Root causes, then failing checks, each linked to its evidence; `prefix` places the links of a
    run copied into a merged report (runs/<run id>/), which puts them under a heading of its own."""
    parts = []
    if causes:
        parts.append(f"<{heading} id='{_e(prefix)}causes'>Deviations by cause</{heading}><p class='msg'>A cause is one thing the target does "
                     "otherwise than OpenAI, named by what was observed; fix it once and every instance it counts goes."
                     "</p><table class='causes'><thead><tr><th>cause</th><th>level</th><th>instances</th>"
                     "<th>checks</th><th>category</th><th>example</th></tr></thead><tbody>")
        for c in causes:
            e = c["example"]
            checks = ", ".join(f"<a href='{_e(prefix + check_page(ch))}'><code>{_e(ch)}</code></a>"
                               for ch in c["checks"][:6])
            checks += f" and {len(c['checks']) - 6} more" if len(c["checks"]) > 6 else ""
            parts.append(f"<tr id='{_e(prefix + c['id'])}'><td><strong>{_e(c['id'])}</strong>: {_e(cause_name(c))}</td>"
                         f"<td class='{_level_class(c['level'])}'>{_e(c['level'])}</td><td>{c['instances']}</td><td>{checks}</td>"
                         f"<td>{_e(c['category'])}</td><td class='msg'><a href='{_e(prefix + evidence_page(e['evidence']))}'>"
                         f"{_e(e['check'])}{_e(_instance(e))}: {_e(_one_line(e['message'], 200))}</a></td></tr>")
        parts.append("</tbody></table>")
    if failing:
        parts.append(f"<{heading} id='{_e(prefix)}failing-checks'>Failing checks</{heading}><table class='failing'>"
                     "<thead><tr><th>check</th>"
                     "<th>level</th><th>failed</th><th>first failure</th></tr></thead><tbody>")
        for f in failing:
            first = f["first"]
            count = f"{f['failed']}/{f['instances']}" + (f", {f['errors']} error" if f["errors"] else "")
            parts.append(f"<tr><td><a href='{_e(prefix + check_page(f['id']))}'><code>{_e(f['id'])}</code></a></td>"
                         f"<td class='{_level_class(f['level']) if f['failed'] else 'error'}'>{_e(f['level'])}</td><td>{_e(count)}</td>"
                         f"<td class='msg'><a href='{_e(prefix + evidence_page(first['evidence']))}'>"
                         f"{_e(_instance(first).strip())}: {_e(_one_line(first['message'], 200))}</a></td></tr>")
        parts.append("</tbody></table>")
    return "".join(parts)


DOCS_TITLE = ("what the target's own documentation claims (its target file's [declared], "
              "with the page and the claim where it makes one)")


def docs_cell_html(declared: str, docs: dict | None) -> str:
    """The docs cell: declared / not declared / declared unsupported, linked to the target's documentation,
    with the claim it makes about the parameter."""
    if not docs or not docs.get("url"):
        return f"<td>{_e(declared)}</td>"
    claim = f"<div class='msg'>{_e(docs['claim'])}</div>" if docs.get("claim") else ""
    return f"<td><a href='{_e(docs['url'])}'>{_e(declared)}</a>{claim}</td>"


def docs_cell_markdown(declared: str, docs: dict | None) -> str:
    if not docs or not docs.get("url"):
        return declared
    claim = f": {_md(docs['claim'])}" if docs.get("claim") else ""
    return f"[{declared}]({docs['url']}){claim}"


def verdict_cell_html(cell: dict) -> str:
    """A parameter verdict; a failing clause behind it is named in the cell, linked to its evidence."""
    label = _e(cell["verdict"])
    if cell["evidence"]:
        label = (f"<a href='{_e(evidence_page(cell['evidence'][0]))}' "
                 f"title='{_e('; '.join(cell.get('notes') or []))}'>{label}</a>")
    failing = cell.get("failing") or []
    if failing:
        names = ", ".join(f"<a href='{_e(evidence_page(f['evidence']))}'><code>{_e(f['check'])}</code></a> "
                          f"{_e(f['level'])}" for f in failing[:3])
        more = f" and {len(failing) - 3} more" if len(failing) > 3 else ""
        label += f"<div class='why'>failed: {names}{more}</div>"
    return f"<td class='{cell['verdict'].replace(' ', '-')}'>{label}</td>"


LEGEND = ("<p class='legend'>Verdicts: <span class='honoured'>honoured</span><span class='accepted'>accepted</span>"
          "<span class='deviates'>deviates</span><span class='ignored'>ignored</span>"
          "<span class='rejected'>rejected</span><span class='broken'>broken</span> · Outcomes: "
          "<span class='pass'>pass</span><span class='fail'>fail</span><span class='unsupported'>unsupported</span>"
          "<span class='inconclusive'>inconclusive</span><span class='error'>error</span>"
          " (definitions: INTERPRETING.md). Every cell links to its evidence.</p>")


def trend_svg(points: "tuple[TrendPoint, ...]", target: str, width: int = 320, height: int = 90) -> str:
    """An inline SVG of the MUST and SHOULD pass rates (of check x model cells, as the history keeps
    them) over the target's runs (no script, no network)."""
    pad = 18
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='trend' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='pass rate over {len(points)} runs of "
             f"{html.escape(target, quote=True)}'>",
             f"<rect x='{pad}' y='4' width='{width - 2 * pad}' height='{height - pad - 4}' fill='#f7f9fb' "
             "stroke='#d6dbe3'/>",
             "<text x='2' y='12' font-size='9' fill='#566074'>100%</text>",
             f"<text x='2' y='{height - pad}' font-size='9' fill='#566074'>0%</text>"]
    if not points:
        parts.append(f"<text x='{pad + 6}' y='{height // 2}' font-size='11' fill='#566074'>no history yet</text>")
    for level, colour in (("MUST", "#1f6feb"), ("SHOULD", "#9a6700")):
        drawn = []
        for i, point in enumerate(points):
            share = point.shares.get(level)
            if share is None:
                continue
            x = pad + (width - 2 * pad) * (i / max(1, len(points) - 1) if len(points) > 1 else 0.5)
            y = 4 + (height - pad - 4) * (1 - share)
            drawn.append((x, y, point.run, share))
        if len(drawn) > 1:
            parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='"
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in drawn) + "'/>")
        for x, y, run, share in drawn:
            parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'><title>"
                         f"{html.escape(run)}: {level} {share:.1%} of check x model cells</title></circle>")
    parts.append(f"<text x='{pad}' y='{height - 4}' font-size='9' fill='#1f6feb'>MUST</text>"
                 f"<text x='{pad + 40}' y='{height - 4}' font-size='9' fill='#9a6700'>SHOULD</text>"
                 f"<text x='{width - pad}' y='{height - 4}' font-size='9' fill='#566074' text-anchor='end'>"
                 f"{len(points)} run(s)</text></svg>")
    return "".join(parts)


def render_html(report: "RunReport") -> str:
    """The run's matrix page; a failed instance whose evidence a published folder does not keep is
    listed without a link."""
    matrix = report.matrix
    run = report.run
    models = report.models
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>Compatibility matrix: {_e(run['target'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Compatibility matrix: {_e(run['target'])}</h1>",
             f"<p class='meta'>{_e(run['description'])} · {_e(run['base_url'])} · run <code>{_e(run['id'])}</code>"
             f" · {_e(run['started'])} to {_e(run['finished'])} · suite {_e(run['suite_version'])}, "
             f"openai SDK {_e(run['openai_sdk'])}</p>",
             *([f"<p class='headline bad changed'>{_e(changed_on_purpose(run))}</p>"] if changed_on_purpose(run) else []),
             headline_html(report.headline),
             deviations_html(report.causes, report.failing_checks),
             "<h2 id='summary'>Summary</h2><ul class='summary'>"
             + "".join(f"<li>{_e(l)}</li>" for l in render_summary_lines(report)) + "</ul>",
             trend_svg(report.trend, run["target"]) if report.trend is not None else "",
             LEGEND,
             "<h2 id='parameters'>Parameter verdicts</h2><table id='parameter-verdicts'><thead><tr><th>endpoint</th>"
             f"<th>parameter</th><th title='{_e(DOCS_TITLE)}'>docs</th>" + "".join(f"<th>{_e(m)}</th>" for m in models) + "</tr></thead><tbody>"]
    for row in matrix["parameters"]:
        name = f"<a href='{_e(row['clause'])}'><code>{_e(row['parameter'])}</code></a>"
        if row["kind"] == "extension":
            name += " <em>extension</em>"
        cells = [verdict_cell_html(row["models"][m]) for m in models]
        parts.append(f"<tr><td>{_e(row['endpoint'])}</td><td>{name}</td>{docs_cell_html(row['declared'], row.get('docs'))}"
                     + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    parts.append(changes_html(report.changes))
    parts.append("<h2 id='checks'>Checks</h2><table id='checks-table'><thead><tr><th>check</th><th>level</th>"
                 "<th>statement</th><th>requests · tokens</th>" + "".join(f"<th>{_e(m)}</th>" for m in models)
                 + "</tr></thead><tbody>")
    for row in matrix["checks"]:
        cells = []
        for m in models:
            cell = report.cells.get((row["id"], m))
            if not cell:
                cells.append("<td></td>")
                continue
            cells.append(check_cell_html(cell))
        level = row["level"] + (" · extension" if row["extension"] else "")
        parts.append(f"<tr><td><a href='{_e(row['clause'])}'><code>{_e(row['id'])}</code></a></td><td>{_e(level)}</td>"
                     f"<td class='msg'>{_e(row['statement'])}</td><td>{_e(_check_cost(row))}</td>" + "".join(cells)
                     + "</tr>")
    parts.append("</tbody></table>")
    if report.failed_instances:
        parts.append("<h2 id='deviations'>Every failed instance</h2><table><thead><tr><th>outcome</th><th>check</th>"
                     "<th>instance</th><th>cause</th><th>message</th></tr></thead><tbody>")
        for f in report.failed_instances:
            i = f.instance
            variant = f" {i['variant']}" if i.get("variant") else ""
            parts.append(f"<tr><td class='{i['outcome']}'>{_e(i['outcome'])}</td><td><code>{_e(f.check)}</code>"
                         f"{_e(variant)}</td><td>{_e(i['model'])} · {_e(i['mode'])} · {_e(i['path'])}</td>"
                         + (f"<td><a href='#{_e(i['cause'])}'>{_e(i['cause'])}</a></td>" if i.get("cause") else "<td></td>")
                         + (f"<td class='msg'><a href='{_e(evidence_page(f.evidence))}'>{_e(i['message'])}</a></td></tr>"
                            if f.linked else f"<td class='msg'>{_e(i['message'])}</td></tr>"))
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)
