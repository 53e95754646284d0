"""Render matrix.json as Markdown and as one self-contained HTML page (no external assets)."""

from __future__ import annotations

import html

from .history import change_marks, trend_svg

VERDICT_SYMBOL = {"honoured": "✅ honoured", "ignored": "⚠️ ignored", "rejected": "⛔ rejected",
                  "broken": "💥 broken", "accepted": "☑️ accepted", "not measured": "· not measured"}
CHANGE_SYMBOL = {"regressed": "↓ regressed", "fixed": "↑ fixed", "new": "✱ new"}
OUTCOME_SYMBOL = {"pass": "✅ pass", "fail": "❌ fail", "unsupported": "➖ unsupported",
                  "inconclusive": "❔ inconclusive", "error": "⚠️ error"}


def _cell_counts(cell: dict) -> str:
    counts = cell["counts"]
    total = sum(counts.values())
    if len(counts) == 1:
        return f"{OUTCOME_SYMBOL[cell['outcome']]} {total}/{total}" if total > 1 else OUTCOME_SYMBOL[cell["outcome"]]
    return f"{OUTCOME_SYMBOL[cell['outcome']]} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"


def render_summary_lines(matrix: dict) -> list[str]:
    s = matrix["summary"]
    o = s["outcomes"]
    lines = [f"{s['instances']} check instances of {s['checks']} checks: "
             + ", ".join(f"{o[k]} {k}" for k in ("pass", "fail", "unsupported", "inconclusive", "error")),
             f"{s['requests']} requests ({s['requests'] / max(1, s['instances']):.2f} per check instance), "
             f"{s['retries']} retries"]
    tokens = s.get("tokens")
    if tokens:
        lines.append(f"tokens: {tokens['prompt']} prompt + {tokens['completion']} completion"
                     + (f" ({tokens['unmetered']} responses reported no usage)" if tokens["unmetered"] else ""))
    if s.get("not_run"):
        lines.append(f"not run: {s['not_run']} check instances (the token budget ran out; listed in not-run.json)")
    if s.get("categories"):
        lines.append("failures by category: " + ", ".join(f"{n} {c}" for c, n in sorted(
            s["categories"].items(), key=lambda item: -item[1])))
    for level, counts in s["by_level"].items():
        judged = counts["pass"] + counts["fail"]
        share = f"{100 * counts['pass'] / judged:.0f}%" if judged else "n/a"
        lines.append(f"{level}: {counts['pass']}/{judged} passed ({share})")
    return lines


def render_markdown(matrix: dict) -> str:
    run = matrix["run"]
    models = run["models"]
    out = [f"# Compatibility matrix: {run['target']}", "",
           f"- Target: {run['description'] or run['target']} ({run['base_url']})",
           f"- Run: `{run['id']}`, {run['started']} to {run['finished']}",
           f"- Suite {run['suite_version']}, openai SDK {run['openai_sdk']}; outcomes as defined in {run['definitions']}",
           ""]
    out += [f"- {line}" for line in render_summary_lines(matrix)]
    out += ["", "## Parameter verdicts", "",
            "| endpoint | parameter | declared | " + " | ".join(models) + " |",
            "|---|---|---|" + "---|" * len(models)]
    for row in matrix["parameters"]:
        name = f"`{row['parameter']}`" + (" (extension)" if row["kind"] == "extension" else "")
        cells = []
        for m in models:
            cell = row["models"][m]
            text = VERDICT_SYMBOL[cell["verdict"]]
            if cell["evidence"]:
                text = f"[{text}]({cell['evidence'][0]})"
            cells.append(text)
        out.append(f"| {row['endpoint']} | {name} | {row['declared']} | " + " | ".join(cells) + " |")
    out += changes_markdown(matrix.get("changes"))
    marks = change_marks(matrix.get("changes"))
    out += ["", "## Checks", "", "| check | level | requests · tokens | " + " | ".join(models) + " |",
            "|---|---|---|" + "---|" * len(models)]
    for row in matrix["checks"]:
        cells = []
        for m in models:
            cell = row["models"].get(m)
            mark = f" {CHANGE_SYMBOL[marks[(row['id'], m)]]}" if (row["id"], m) in marks else ""
            cells.append(f"[{_cell_counts(cell)}]({cell['evidence']}){mark}" if cell else "")
        level = row["level"] + (" ext" if row["extension"] else "")
        out.append(f"| [`{row['id']}`]({row['clause']}) | {level} | {_check_cost(row)} | " + " | ".join(cells) + " |")
    deviations = [(row, i) for row in matrix["checks"] for i in row["instances"] if i["outcome"] in ("fail", "error")]
    if deviations:
        out += ["", "## Deviations and errors", ""]
        for row, i in deviations:
            variant = f" {i['variant']}" if i.get("variant") else ""
            out.append(f"- **{i['outcome']}** `{row['id']}`{variant} [{i['model']} · {i['mode']} · {i['path']}]: "
                       f"{i['message']} ([evidence]({i['evidence']}))")
    return "\n".join(out) + "\n"


def _check_cost(row: dict) -> str:
    """Requests one check sent over all its instances, and the tokens the target reported for them."""
    return f"{row.get('requests', 0)} · {row.get('tokens', 0)}"


def check_cell_html(cell: dict, change: str | None) -> str:
    """One check's cell: the outcome (linked to the evidence), and the change since the previous run."""
    mark = f"<span class='mark {change}'>{_e(CHANGE_SYMBOL[change])}</span>" if change else ""
    return (f"<td class='{cell['outcome']}'><a href='{_e(cell['evidence'])}' title='{_e(cell['message'] or '')}'>"
            f"{_e(_cell_counts(cell))}</a>{mark}</td>")


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
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def render_html(matrix: dict) -> str:
    run = matrix["run"]
    models = run["models"]
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>Compatibility matrix: {_e(run['target'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Compatibility matrix: {_e(run['target'])}</h1>",
             f"<p class='meta'>{_e(run['description'])} · {_e(run['base_url'])} · run <code>{_e(run['id'])}</code>"
             f" · {_e(run['started'])} to {_e(run['finished'])} · suite {_e(run['suite_version'])}, "
             f"openai SDK {_e(run['openai_sdk'])}</p>",
             "<ul class='summary'>" + "".join(f"<li>{_e(l)}</li>" for l in render_summary_lines(matrix)) + "</ul>",
             trend_svg(matrix["trend"], run["target"]) if matrix.get("trend") else "",
             "<p class='legend'>Verdicts: <span class='honoured'>honoured</span><span class='accepted'>accepted</span>"
             "<span class='ignored'>ignored</span>"
             "<span class='rejected'>rejected</span><span class='broken'>broken</span> · Outcomes: "
             "<span class='pass'>pass</span><span class='fail'>fail</span><span class='unsupported'>unsupported</span>"
             "<span class='inconclusive'>inconclusive</span><span class='error'>error</span>"
             " (definitions: INTERPRETING.md). Every cell links to its evidence.</p>",
             "<h2 id='parameters'>Parameter verdicts</h2><table id='parameter-verdicts'><thead><tr><th>endpoint</th>"
             "<th>parameter</th><th>declared</th>" + "".join(f"<th>{_e(m)}</th>" for m in models) + "</tr></thead><tbody>"]
    for row in matrix["parameters"]:
        name = f"<a href='{_e(row['clause'])}'><code>{_e(row['parameter'])}</code></a>"
        if row["kind"] == "extension":
            name += " <em>extension</em>"
        cells = []
        for m in models:
            cell = row["models"][m]
            css = cell["verdict"].replace(" ", "-")
            label = _e(cell["verdict"])
            if cell["evidence"]:
                label = f"<a href='{_e(cell['evidence'][0])}' title='{_e('; '.join(cell['notes']))}'>{label}</a>"
            cells.append(f"<td class='{css}'>{label}</td>")
        parts.append(f"<tr><td>{_e(row['endpoint'])}</td><td>{name}</td><td>{_e(row['declared'])}</td>"
                     + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    parts.append(changes_html(matrix.get("changes")))
    marks = change_marks(matrix.get("changes"))
    parts.append("<h2 id='checks'>Checks</h2><table id='checks-table'><thead><tr><th>check</th><th>level</th>"
                 "<th>statement</th><th>requests · tokens</th>" + "".join(f"<th>{_e(m)}</th>" for m in models)
                 + "</tr></thead><tbody>")
    for row in matrix["checks"]:
        cells = []
        for m in models:
            cell = row["models"].get(m)
            if not cell:
                cells.append("<td></td>")
                continue
            cells.append(check_cell_html(cell, marks.get((row["id"], m))))
        level = row["level"] + (" · extension" if row["extension"] else "")
        parts.append(f"<tr><td><a href='{_e(row['clause'])}'><code>{_e(row['id'])}</code></a></td><td>{_e(level)}</td>"
                     f"<td class='msg'>{_e(row['statement'])}</td><td>{_e(_check_cost(row))}</td>" + "".join(cells)
                     + "</tr>")
    parts.append("</tbody></table>")
    deviations = [(row, i) for row in matrix["checks"] for i in row["instances"] if i["outcome"] in ("fail", "error")]
    if deviations:
        parts.append("<h2 id='deviations'>Deviations and errors</h2><table><thead><tr><th>outcome</th><th>check</th>"
                     "<th>instance</th><th>message</th></tr></thead><tbody>")
        for row, i in deviations:
            variant = f" {i['variant']}" if i.get("variant") else ""
            parts.append(f"<tr><td class='{i['outcome']}'>{_e(i['outcome'])}</td><td><code>{_e(row['id'])}</code>"
                         f"{_e(variant)}</td><td>{_e(i['model'])} · {_e(i['mode'])} · {_e(i['path'])}</td>"
                         f"<td class='msg'><a href='{_e(i['evidence'])}'>{_e(i['message'])}</a></td></tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)
