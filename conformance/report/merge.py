"""`conformance report DIR...`: several runs (one per target, say) merged into one publishable folder.

OUT/index.html and OUT/matrix.md: a score per target, declared vs measured parameter verdicts
grouped by endpoint, then every check; each cell links to its evidence, copied to
OUT/runs/<run id>/ so the folder stands on its own.  OUT/matrix.json holds the data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

from .allure import target_identity
from .evidence import published_evidence, write_check_pages, write_evidence_page
from .history import change_marks, like_runs, scores, trend_svg
from .matrix import OUTCOME_ORDER, write_matrix
from .render import (CSS, DOCS_TITLE, _cell_counts, _e, _verdict_markdown, check_cell_html, deviations_html,
                     deviations_markdown, docs_cell_html, docs_cell_markdown, headline, headline_html,
                     verdict_cell_html)

MERGED_FORMAT = 1


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
    (evidence.published_evidence); without it, every instance's evidence is copied."""
    matrices = [load_run(d) for d in run_dirs]
    ids = [m["run"]["id"] for m in matrices]
    if len(set(ids)) != len(ids):
        raise ReportError(f"the same run appears twice: {sorted(i for i in ids if ids.count(i) > 1)}")
    out.mkdir(parents=True, exist_ok=True)
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
    targets = []
    for m in matrices:
        run = m["run"]
        targets.append({"run": run["id"], "target": run["target"], "description": run.get("description", ""),
                        "base_url": run["base_url"], "models": run["models"], "finished": run["finished"],
                        "scores": scores(m), "summary": m["summary"], "changes": m.get("changes"),
                        "causes": m.get("causes", []), "failing_checks": m.get("failing_checks", []),
                        "identity": _identity(run)})
    parameters = []
    for row in matrices[0]["parameters"]:
        key = (row["endpoint"], row["parameter"])
        cells = {}
        for m in matrices:
            other = next((r for r in m["parameters"] if (r["endpoint"], r["parameter"]) == key), None)
            if other is None:
                continue
            here = f"runs/{m['run']['id']}/"
            cells[m["run"]["id"]] = {"declared": other["declared"], "docs": other.get("docs"), "models": {
                model: {"verdict": c["verdict"], "evidence": [here + e for e in c["evidence"][:1]],
                        "notes": c.get("notes", []),
                        "failing": [{**f, "evidence": here + f["evidence"]} for f in c.get("failing", [])]}
                for model, c in other["models"].items()}}
        parameters.append({"endpoint": row["endpoint"], "parameter": row["parameter"], "kind": row["kind"],
                           "clause": row["clause"], "runs": cells})
    checks: dict[str, dict] = {}
    for m in matrices:
        for row in m["checks"]:
            entry = checks.setdefault(row["id"], {"id": row["id"], "level": row["level"], "endpoint": row["endpoint"],
                                                  "extension": row["extension"], "clause": row["clause"],
                                                  "statement": row["statement"], "runs": {}})
            here = f"runs/{m['run']['id']}/"
            entry["runs"][m["run"]["id"]] = {model: {**cell, "evidence": here + cell["evidence"],
                                                     "page": here + (cell.get("page") or cell["evidence"])}
                                             for model, cell in row["models"].items()}
    merged = {"format": MERGED_FORMAT, "targets": targets, "parameters": parameters,
              "checks": sorted(checks.values(), key=lambda c: (c["endpoint"], c["id"]))}
    merged["differences"] = differences(merged)
    (out / "matrix.json").write_text(json.dumps(merged, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "matrix.md").write_text(render_merged_markdown(merged, with_history=not publish), encoding="utf-8")
    (out / "index.html").write_text(render_merged_html(merged, history_entries or [], with_history=not publish),
                                    encoding="utf-8")
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
    write_matrix(out, matrix, published=kept)
    write_check_pages(out, matrix, published=kept)


def differences(merged: dict) -> list[dict]:
    """Checks whose outcome (the worst over a run's models) is not the same in every run."""
    runs = [t["run"] for t in merged["targets"]]
    out = []
    for row in merged["checks"]:
        outcomes = {}
        for run_id in runs:
            cells = row["runs"].get(run_id, {})
            outcomes[run_id] = min((c["outcome"] for c in cells.values()), key=OUTCOME_ORDER.index) if cells else None
        if len(set(outcomes.values())) > 1:
            out.append({"check": row["id"], "level": row["level"], "outcomes": outcomes})
    return out


def _share(score: dict) -> str:
    return f"{score['share']:.0%} ({score['passed']}/{score['judged']})" if score["share"] is not None else "n/a"


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


def render_merged_markdown(merged: dict, with_history: bool = True) -> str:
    targets = merged["targets"]
    columns = [(t["run"], model) for t in targets for model in t["models"]]
    label = _labels(targets)
    out = ["# Compatibility matrix", "",
           "| target | run | models | MUST | SHOULD | extension | " + ("changes | " if with_history else "")
           + "requests · tokens |", "|---|---|---|---|---|---|" + ("---|" if with_history else "") + "---|"]
    for t in targets:
        s = t["scores"]
        out.append(f"| {label[t['run']]} | `{t['run']}` | {', '.join(t['models'])} | {_share(s['MUST'])} | "
                   f"{_share(s['SHOULD'])} | {_share(s['extension'])} | "
                   + (f"{_change_summary(t['changes'])} | " if with_history else "") + f"{_cost(t['summary'])} |")
    out += ["", "Scores: check × model cells passed among those judged (pass, fail, error), per level.", ""]
    out += ["## Deviations", ""]
    for t in targets:
        out += [f"### {label[t['run']]}", ""] + deviations_markdown(t, prefix=f"runs/{t['run']}/") + [""]
    for endpoint in ("chat", "completions"):
        out += [f"## Parameter verdicts: {endpoint}", "",
                "| parameter | " + " | ".join(f"{label[r]}: docs | {label[r]}: {model}" if first else
                                              f"{label[r]}: {model}"
                                              for r, model, first in _first_flags(columns)) + " |",
                "|---|" + "---|" * (len(columns) + len(targets))]
        for row, row_cells in _parameter_rows(merged, endpoint, columns):
            cells = []
            for kind, value in row_cells:
                if kind == "declared":
                    cells.append(docs_cell_markdown(*value) if value else "")
                else:
                    cells.append(_verdict_markdown(value) if value else "")
            name = f"`{row['parameter']}`" + (" (extension)" if row["kind"] == "extension" else "")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    runs = [t["run"] for t in targets]
    out += ["## Where the runs differ", "", f"{len(merged['differences'])} checks whose outcome (worst over "
            "the models) differs between the runs.", "", "| check | level | " + " | ".join(label[r] for r in runs)
            + " |", "|---|---|" + "---|" * len(runs)]
    for d in merged["differences"]:
        out.append(f"| `{d['check']}` | {d['level']} | " + " | ".join(d["outcomes"][r] or "" for r in runs) + " |")
    out += ["", "## Checks", "", "| check | level | " + " | ".join(f"{label[r]}: {m}" for r, m in columns) + " |",
            "|---|---|" + "---|" * len(columns)]
    for row in merged["checks"]:
        cells = []
        for run_id, model in columns:
            cell = row["runs"].get(run_id, {}).get(model)
            cells.append(f"[{_cell_counts(cell)}]({cell.get('page') or cell['evidence']})" if cell else "")
        out.append(f"| [`{row['id']}`]({row['clause']}) | {row['level']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _identity(run: dict) -> str:
    """What the run tested, as Allure names it: the target, and the quirks and faults of its server."""
    faults = run.get("faults")
    return target_identity(run["target"], run.get("quirks") or (),
                           SimpleNamespace(rates=faults["rates"], seed=faults["seed"]) if faults else None)


def _labels(targets: list[dict]) -> dict[str, str]:
    """Column labels: what each run tested, with the run id where that appears more than once."""
    names = [t.get("identity", t["target"]) for t in targets]
    return {t["run"]: name if names.count(name) == 1 else f"{name} ({t['run']})" for t, name in zip(targets, names)}


def _parameter_rows(merged: dict, endpoint: str, columns: list[tuple[str, str]]):
    """The parameter rows of an endpoint, each with its cells in column order: ('declared', text)
    before each run's models, then ('verdict', cell or None) per model."""
    for row in merged["parameters"]:
        if row["endpoint"] != endpoint:
            continue
        cells = []
        for run_id, model, first in _first_flags(columns):
            cell = row["runs"].get(run_id)
            if first:
                cells.append(("declared", (cell["declared"], cell.get("docs")) if cell else None))
            cells.append(("verdict", cell["models"].get(model) if cell else None))
        yield row, cells


def _first_flags(columns: list[tuple[str, str]]):
    seen = set()
    for run_id, model in columns:
        yield run_id, model, run_id not in seen
        seen.add(run_id)


def render_merged_html(merged: dict, history_entries: list[dict], with_history: bool = True) -> str:
    """The merged page; without `with_history` (a published folder, made apart from any history) the
    scores table has no changes and trend columns."""
    targets = merged["targets"]
    columns = [(t["run"], model) for t in targets for model in t["models"]]
    label = _labels(targets)
    marks = {t["run"]: change_marks(t["changes"]) for t in targets}
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Compatibility matrix</title>",
             f"<style>{CSS}</style></head><body><h1>Compatibility matrix</h1>",
             "".join(f"<p class='headline {'bad' if t['summary']['outcomes']['fail'] else 'good'}'>"
                     f"<a href='#deviations-{_e(t['run'])}'>{_e(label[t['run']])}</a>: {_e(headline(t))}</p>"
                     for t in targets),
             "<p class='meta'>Outcomes and verdicts as defined in INTERPRETING.md. Every cell links to its evidence."
             "</p><h2 id='scores'>Scores</h2><table id='scores-table'><thead><tr><th>target</th><th>run</th>"
             "<th>models</th><th>MUST</th><th>SHOULD</th><th>extension</th>"
             + ("<th>changes</th>" if with_history else "") + "<th>requests · tokens</th>"
             + ("<th>trend</th>" if with_history else "") + "</tr></thead><tbody>"]
    for t in targets:
        s = t["scores"]
        parts.append(f"<tr><td>{_e(label[t['run']])}<div class='msg'>{_e(t['description'])}</div></td>"
                     f"<td><a href='runs/{_e(t['run'])}/matrix.html'><code>{_e(t['run'])}</code></a></td>"
                     f"<td>{_e(', '.join(t['models']))}</td><td>{_e(_share(s['MUST']))}</td>"
                     f"<td>{_e(_share(s['SHOULD']))}</td><td>{_e(_share(s['extension']))}</td>"
                     + (f"<td>{_e(_change_summary(t['changes']))}</td>" if with_history else "")
                     + f"<td>{_e(_cost(t['summary']))}</td>"
                     + (f"<td>{trend_svg(like_runs(history_entries, t['run']), t['target'])}</td>" if with_history
                        else "") + "</tr>")
    parts.append("</tbody></table><p class='msg'>Score: check × model cells passed among those judged (pass, fail, "
                 "error), per level"
                 + ("; the trend plots it over the runs like this one in the history (same target, base URL, "
                    "selection, quirks and faults)." if with_history else ".") + "</p>")
    parts.append("<h2 id='deviations'>Deviations</h2>")
    for t in targets:
        parts.append(f"<h3 id='deviations-{_e(t['run'])}'>{_e(label[t['run']])}</h3>{headline_html(t)}"
                     + deviations_html(t, prefix=f"runs/{t['run']}/", heading="h4"))
    header_top = "".join(f"<th colspan='{len(t['models']) + 1}'>{_e(label[t['run']])}</th>" for t in targets)
    header = "".join(f"<th title='{_e(DOCS_TITLE)}'>docs</th>" * first + f"<th>{_e(model)}</th>" for _, model, first in _first_flags(columns))
    for endpoint in ("chat", "completions"):
        parts.append(f"<h2 id='parameters-{endpoint}'>Parameter verdicts: {endpoint}</h2>"
                     f"<table class='parameter-verdicts'><thead><tr><th rowspan='2'>parameter</th>{header_top}</tr>"
                     f"<tr>{header}</tr></thead><tbody>")
        for row, row_cells in _parameter_rows(merged, endpoint, columns):
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
    runs = [t["run"] for t in targets]
    parts.append(f"<h2 id='differences'>Where the runs differ</h2><p>{len(merged['differences'])} checks whose "
                 "outcome (worst over the models) differs between the runs.</p><table id='differences-table'>"
                 "<thead><tr><th>check</th><th>level</th>" + "".join(f"<th>{_e(label[r])}</th>" for r in runs)
                 + "</tr></thead><tbody>")
    for d in merged["differences"]:
        parts.append(f"<tr><td><code>{_e(d['check'])}</code></td><td>{_e(d['level'])}</td>" + "".join(
            f"<td class='{_e(d['outcomes'][r] or '')}'>{_e(d['outcomes'][r] or '')}</td>" for r in runs) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<h2 id='checks'>Checks</h2><table id='checks-table'><thead><tr><th>check</th><th>level</th>"
                 + "".join(f"<th>{_e(label[r])}<br>{_e(m)}</th>" for r, m in columns) + "</tr></thead><tbody>")
    for row in merged["checks"]:
        cells = []
        for run_id, model in columns:
            cell = row["runs"].get(run_id, {}).get(model)
            if cell is None:
                cells.append("<td></td>")
                continue
            cells.append(check_cell_html(cell, marks[run_id].get((row["id"], model))))
        level = row["level"] + (" · extension" if row["extension"] else "")
        parts.append(f"<tr><td><a href='{_e(row['clause'])}'><code>{_e(row['id'])}</code></a></td>"
                     f"<td>{_e(level)}</td>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></body></html>\n")
    return "".join(parts)

