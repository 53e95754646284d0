"""The go / no-go report: JSON (the data), Markdown and one self-contained HTML page."""

from __future__ import annotations

import os
from pathlib import Path

from ..report.render import CSS
from ..report.render import escape as _e
from ..report.terms import changed_on_purpose
from .replay import ReplayResult
from .traffic import Traffic
from .verdicts import FeatureVerdict

STATE_SYMBOL = {"broken": "❌ broken", "unsupported": "⛔ unsupported", "unknown": "❔ unknown",
                "caveat": "⚠️ caveat", "works": "✅ works", "not covered": "· not covered"}
VERDICT_SENTENCE = {
    "GO": "every feature your traffic uses works on the target",
    "NO-GO": "some features your traffic uses are broken or refused on the target",
    "UNDETERMINED": "no feature is known broken, but some could not be judged",
}


def build(traffic: Traffic, verdicts: list[FeatureVerdict], decision: str, matrix: dict, run_link: str,
          replayed: list[ReplayResult] | None, unjudged: list[str] = ()) -> dict:
    """The report's data; evidence paths are relative to the report directory."""
    endpoints: dict[str, dict[str, int]] = {}
    for r in traffic.requests:
        mode = "stream" if r.stream else "regular"
        counts = endpoints.setdefault(r.endpoint, {"regular": 0, "stream": 0})
        counts[mode] += 1
    app_models = sorted({str(r.body["model"]) for r in traffic.requests if "model" in r.body})

    def link(path: str | None) -> str | None:
        return f"{run_link}/{path}" if path else None

    features = []
    for v in verdicts:
        f = v.use.feature
        features.append({
            "key": f.key, "title": f.title, "endpoint": f.endpoint, "state": v.state, "reason": v.reason,
            "blocking": f.blocking, "requests": v.use.count, "where": v.use.where, "modes": sorted(v.use.modes),
            "parameter": f.parameter, "workaround": v.workaround,
            "parameter_verdicts": {m: {"verdict": p["verdict"], "evidence": link(p["evidence"])}
                                   for m, p in v.parameter_verdicts.items()},
            "checks": [{"check": c.check, "level": c.level, "statement": c.statement, "outcome": c.outcome,
                        "instances": c.instances, "judged": c.judged,
                        "example": None if c.example is None else {**c.example, "evidence": link(c.example["evidence"])}}
                       for c in v.findings],
        })
    run = matrix["run"]
    return {
        "format": "conformance-migration/1",
        "decision": decision,
        "sentence": VERDICT_SENTENCE[decision],
        "target": run["target"], "base_url": run["base_url"], "judged_models": run["models"], "run": run["id"],
        "changed_on_purpose": changed_on_purpose(run),
        "run_link": run_link,
        "traffic": {"source": traffic.source, "format": traffic.format, "requests": len(traffic.requests),
                    "endpoints": endpoints, "models": app_models, "ignored": traffic.ignored,
                    "skipped": [s.line() for s in traffic.skipped],
                    # skipped entries that may ask for what nothing judged: the decision cannot be GO
                    "skipped_unjudged": list(unjudged)},
        "features": features,
        "replay": None if replayed is None else [
            {"where": r.where, "endpoint": r.endpoint, "stream": r.stream, "models": r.models, "shapes": r.shapes,
             "differences": [{"field": d.field, "reference": d.reference, "candidate": d.candidate, "note": d.note}
                             for d in r.differences], "evidence": r.evidence} for r in replayed],
    }


def relative_link(run_dir: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(run_dir.resolve(), out_dir.resolve())).as_posix()


def _traffic_line(report: dict) -> str:
    t = report["traffic"]
    parts = [f"{name} {c['regular'] + c['stream']}" + (f" ({c['stream']} streamed)" if c["stream"] else "")
             for name, c in sorted(t["endpoints"].items())]
    line = f"{t['requests']} requests from `{t['source']}` ({t['format']}): {', '.join(parts)}"
    if t["models"]:
        line += f"; models the application asks for: {', '.join(t['models'])}"
    if t["skipped"]:
        unjudged = t.get("skipped_unjudged") or []
        line += f"; {len(t['skipped'])} entries skipped" + (
            f", which may ask for what nothing judged, so the decision cannot be GO: {'; '.join(unjudged)}"
            if unjudged else "")
    return line


def summary_lines(report: dict) -> list[str]:
    """The console's account: the decision, then one line per feature that is not plainly working."""
    counts: dict[str, int] = {}
    for f in report["features"]:
        counts[f["state"]] = counts.get(f["state"], 0) + 1
    tally = ", ".join(f"{counts[s]} {s}" for s in STATE_SYMBOL if s in counts)
    t = report["traffic"]
    lines = [f"{report['decision']}: {report['sentence']} ({report['target']}, models "
             f"{', '.join(report['judged_models'])}); {len(report['features'])} features: {tally}; "
             f"{t['requests']} requests judged, {len(t['skipped'])} skipped"]
    if report.get("changed_on_purpose"):
        lines.insert(0, report["changed_on_purpose"])
    if t.get("skipped_unjudged"):
        lines.append(f"  not GO: skipped entries may ask for what nothing judged: {'; '.join(t['skipped_unjudged'][:5])}"
                     + (" ..." if len(t["skipped_unjudged"]) > 5 else ""))
    for f in report["features"]:
        if f["state"] != "works":
            fix = f"; workaround: {f['workaround']}" if f["workaround"] else ""
            lines.append(f"  {f['state']:12} {f['title']}: {f['reason']}{fix}")
    return lines


def where_text(feature: dict) -> str:
    """'lines 1, 2, 4, ...' from ['line 1', 'line 2', 'line 4', ...]."""
    where = feature["where"][:3]
    kind = where[0].split()[0]
    numbers = ", ".join(w.split()[-1] for w in where)
    more = ", ..." if feature["requests"] > len(where) else ""
    return f"{kind}{'s' if len(where) > 1 else ''} {numbers}{more}"


def _example_text(check: dict) -> str:
    ex = check["example"]
    if not ex:
        return ""
    variant = f" {ex['variant']}" if ex.get("variant") else ""
    return f"{ex['model']} · {ex['mode']} · {ex['path']}{variant}: {ex['message']}"


def render_markdown(report: dict) -> str:
    out = [f"# Before you migrate: {report['target']}", "",
           f"**{report['decision']}**: {report['sentence']}.", "",
           *([f"**{report['changed_on_purpose']}**", ""] if report.get("changed_on_purpose") else []),
           f"- Traffic: {_traffic_line(report)}",
           f"- Judged on target `{report['target']}` ({report['base_url']}), models "
           f"{', '.join(report['judged_models'])}, from run [`{report['run']}`]({report['run_link']}/matrix.md)",
           "- States: broken (a MUST check failed), unsupported (cleanly refused), unknown (not judged), caveat "
           "(a SHOULD failed, or error shapes/authentication), works, not covered (no check exists)", "",
           "| feature | requests | state | why | workaround |", "|---|---|---|---|---|"]
    for f in report["features"]:
        out.append(f"| {f['title']} | {f['requests']} ({where_text(f)}) | {STATE_SYMBOL[f['state']]} | "
                   f"{f['reason']} | {f['workaround']} |".replace("\n", " "))
    out += ["", "## Evidence per feature", ""]
    for f in report["features"]:
        if f["state"] == "works":
            continue
        out.append(f"### {f['title']}: {f['state']}")
        out.append("")
        if f["parameter_verdicts"]:
            out.append("- parameter `" + str(f["parameter"]) + "`: " + ", ".join(
                f"{m} [{p['verdict']}]({p['evidence']})" if p["evidence"] else f"{m} {p['verdict']}"
                for m, p in f["parameter_verdicts"].items()))
        for c in f["checks"]:
            line = f"- `{c['check']}` ({c['level']}): {c['outcome']}, {c['judged']}/{c['instances']} judged"
            if c["example"]:
                line += f"; {_example_text(c)} ([evidence]({c['example']['evidence']}))"
            out.append(line.replace("\n", " "))
        if f["workaround"]:
            out.append(f"- workaround: {f['workaround']}")
        out.append("")
    out += _replay_markdown(report["replay"])
    skipped = report["traffic"]["skipped"]
    out += ["## Input that was skipped", ""]
    out += [f"- {s}" for s in skipped] or ["- none"]
    if report["traffic"]["ignored"]:
        out.append(f"- {report['traffic']['ignored']} HAR entries were not OpenAI API calls and were ignored")
    return "\n".join(out) + "\n"


def _replay_markdown(replayed: list[dict] | None) -> list[str]:
    if replayed is None:
        return []
    differing = [r for r in replayed if r["differences"]]
    out = ["## Replay of your own requests", "",
           f"{len(replayed)} requests sent to the reference and to the candidate; {len(differing)} answered with a "
           "different structure (status, error envelope, choices, finish reasons, usage, tool calls, [DONE]; "
           "never the text).", ""]
    for r in differing:
        out.append(f"- {r['where']} ({r['endpoint']}{', streamed' if r['stream'] else ''}; "
                   f"[evidence]({r['evidence']})):")
        for d in r["differences"]:
            note = f" ({d['note']})" if d["note"] else ""
            out.append(f"  - {d['field']}: reference `{d['reference']}`, candidate `{d['candidate']}`{note}")
    return out + [""]


def render_html(report: dict) -> str:
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>Before you migrate: {_e(report['target'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Before you migrate: {_e(report['target'])}</h1>",
             f"<p class='decision {_e(report['decision'].lower())}'><strong>{_e(report['decision'])}</strong>: "
             f"{_e(report['sentence'])}.</p>",
             *([f"<p class='headline bad changed'>{_e(report['changed_on_purpose'])}</p>"]
               if report.get("changed_on_purpose") else []),
             f"<p class='meta'>{_e(_traffic_line(report))} · judged on {_e(report['target'])} "
             f"({_e(report['base_url'])}), models {_e(', '.join(report['judged_models']))}, run "
             f"<a href='{_e(report['run_link'])}/matrix.html'><code>{_e(report['run'])}</code></a></p>",
             "<table id='features'><thead><tr><th>feature</th><th>requests</th><th>state</th><th>why</th>"
             "<th>evidence</th><th>workaround</th></tr></thead><tbody>"]
    css = {"broken": "fail", "unsupported": "rejected", "unknown": "inconclusive", "caveat": "ignored",
           "works": "pass", "not covered": "not-measured"}
    for f in report["features"]:
        links = [f"<a href='{_e(c['example']['evidence'])}' title='{_e(_example_text(c))}'>{_e(c['check'])}</a>"
                 for c in f["checks"] if c["example"] and c["example"]["evidence"]]
        parts.append(f"<tr><td>{_e(f['title'])}</td><td>{f['requests']} <small>{_e(where_text(f))}"
                     f"</small></td><td class='{css[f['state']]}'>{_e(f['state'])}</td><td class='msg'>"
                     f"{_e(f['reason'])}</td><td>{'<br>'.join(links)}</td><td class='msg'>{_e(f['workaround'])}"
                     "</td></tr>")
    parts.append("</tbody></table>")
    if report["replay"] is not None:
        parts.append("<h2 id='replay'>Replay of your own requests</h2><table><thead><tr><th>request</th>"
                     "<th>field</th><th>reference</th><th>candidate</th></tr></thead><tbody>")
        for r in report["replay"]:
            for d in r["differences"]:
                parts.append(f"<tr><td><a href='{_e(r['evidence'])}'>{_e(r['where'])}</a> {_e(r['endpoint'])}</td>"
                             f"<td>{_e(d['field'])}</td><td>{_e(d['reference'])}</td><td>{_e(d['candidate'])}"
                             f"{' <small>' + _e(d['note']) + '</small>' if d['note'] else ''}</td></tr>")
        parts.append("</tbody></table>")
        parts.append(f"<p>{len(report['replay'])} requests replayed; "
                     f"{sum(1 for r in report['replay'] if r['differences'])} differ in structure.</p>")
    skipped = report["traffic"]["skipped"]
    parts.append("<h2 id='skipped'>Input that was skipped</h2><ul>"
                 + ("".join(f"<li>{_e(s)}</li>" for s in skipped) or "<li>none</li>") + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)
