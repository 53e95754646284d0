"""Results -> the compatibility matrix: matrix.json (the data), matrix.md and matrix.html.

Parameter verdicts come first (the cell a migrating user looks for), then every check.  Every
cell links to the evidence file of the instance behind it.
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

from ..config.catalogue import load_catalogue
from ..vocabulary import OUTCOMES
from .results import read_results
from ..config.targets import Target
from .causes import failing_checks, root_causes
from .evidence import check_page
from .render import render_html, render_markdown

FORMAT = 1
VERDICT_ORDER = ("broken", "rejected", "ignored", "deviates", "accepted", "honoured")  # worst first
OUTCOME_ORDER = ("fail", "error", "inconclusive", "unsupported", "pass")  # how a mixed cell reads


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _failing_by_parameter(records: list[dict], parameters: set[tuple[str, str]]) -> dict[tuple[str, str, str],
                                                                                        list[dict]]:
    """(endpoint, parameter, model) -> the failed instances of checks about that parameter: those
    declared for it, those whose feature is named after it (`chat.stream` for `stream`), and those
    that observed it (the parameter under test of a data-driven check)."""
    failing: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in records:
        if r["outcome"] != "fail":
            continue
        model = r["dimensions"]["model"]
        about = {(o["endpoint"], o["parameter"]) for o in r.get("observations", [])}
        if r.get("parameter"):
            about.add((r["endpoint"], r["parameter"]))
        named = (r["endpoint"], r["feature"].rpartition(".")[2])
        if named in parameters:
            about.add(named)
        for endpoint, parameter in about:
            failing[(endpoint, parameter, model)].append(r)
    return failing


def _failing_summary(failed: list[dict]) -> list[dict]:
    """One entry per failing check: id, level, how many instances failed, one instance's evidence."""
    by_check: dict[str, list[dict]] = defaultdict(list)
    for r in failed:
        by_check[r["check"]].append(r)
    rows = [{"check": c, "level": rs[0]["level"], "failed": len(rs), "evidence": rs[0]["evidence_file"],
             "message": rs[0]["message"]} for c, rs in by_check.items()]
    return sorted(rows, key=lambda x: (("MUST", "SHOULD", "MAY").index(x["level"]), x["check"]))


def parameter_verdicts(records: list[dict], target: Target) -> list[dict]:
    catalogue = load_catalogue()
    observed: dict[tuple[str, str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for r in records:
        for obs in r.get("observations", []):
            key = (obs["endpoint"], obs["parameter"], r["dimensions"]["model"])
            observed[key].append((obs["verdict"], r["evidence_file"], obs.get("note", "")))
    failing_by_parameter = _failing_by_parameter(records, {(e, p.name) for e in ("chat", "completions")
                                                           for p in catalogue.for_endpoint(e)})
    rows = []
    for endpoint in ("chat", "completions"):
        for p in catalogue.for_endpoint(endpoint):
            declared_list = target.declared.extensions if p.is_extension else target.declared.parameters
            cells = {}
            for model in target.models:
                seen = observed.get((endpoint, p.name, model), [])
                if seen:
                    verdict = min((v for v, _, _ in seen), key=VERDICT_ORDER.index)
                    evidence = [e for v, e, _ in seen if v == verdict]
                    notes = sorted({n for v, _, n in seen if v == verdict and n})
                else:
                    verdict, evidence, notes = "not measured", [], []
                failing = _failing_summary(failing_by_parameter.get((endpoint, p.name, model), []))
                if failing and verdict in ("honoured", "accepted", "not measured"):
                    # It has an effect (or is accepted), but a check about it fails: never green.
                    verdict = "deviates"
                    evidence = [f["evidence"] for f in failing]
                    notes = [f"{f['level']} failed: {f['check']} ({f['failed']} instance(s))" for f in failing]
                cells[model] = {"verdict": verdict, "evidence": evidence[:5], "notes": notes[:3],
                                "observations": len(seen), "failing": failing}
            declared = ("declared unsupported" if p.name in target.declared.unsupported
                        else "declared" if p.name in declared_list else "not declared")
            row = {"endpoint": endpoint, "parameter": p.name, "kind": p.kind, "observable": p.observable,
                   "clause": catalogue.clause(endpoint, p.name), "declared": declared, "models": cells}
            if target.docs.url:  # what the declaration stands on: the target's own documentation
                row["docs"] = {"url": target.docs.url, "claim": target.docs.claim(p.name)}
            rows.append(row)
    return rows


def check_rows(records: list[dict], models: tuple[str, ...]) -> list[dict]:
    by_check: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_check[r["check"]].append(r)
    rows = []
    for check_id in sorted(by_check, key=lambda c: (by_check[c][0]["endpoint"], c)):
        instances = by_check[check_id]
        first = instances[0]
        per_model = {}
        for model in models:
            mine = [i for i in instances if i["dimensions"]["model"] == model]
            if not mine:
                continue
            counts = Counter(i["outcome"] for i in mine)
            worst = min(counts, key=OUTCOME_ORDER.index)
            example = next(i for i in mine if i["outcome"] == worst)
            per_model[model] = {"outcome": worst, "counts": dict(counts), "evidence": example["evidence_file"],
                                "page": check_page(check_id, model), "message": example["message"]}
        rows.append({
            "id": check_id, "feature": first["feature"], "endpoint": first["endpoint"], "level": first["level"],
            "requests": sum(i.get("sent", i["requests"]) for i in instances),
            "tokens": sum((i.get("tokens") or {}).get("prompt", 0) + (i.get("tokens") or {}).get("completion", 0)
                          for i in instances),
            "clause": first["clause"], "statement": first["statement"], "extension": first["extension"],
            "outcomes": dict(Counter(i["outcome"] for i in instances)),
            "models": per_model,
            "instances": [{"model": i["dimensions"]["model"], "mode": i["dimensions"]["mode"],
                           "path": i["dimensions"]["path"], "variant": i.get("variant"), "outcome": i["outcome"],
                           "message": i["message"], "category": i.get("category"),
                           "evidence": i["evidence_file"], "requests": i["requests"],
                           "retries": i["retries"]}
                          for i in instances],
        })
    return rows


def summarise(records: list[dict]) -> dict:
    counts = Counter(r["outcome"] for r in records)
    by_level: dict[str, dict[str, int]] = {}
    for level in ("MUST", "SHOULD", "MAY"):
        c = Counter(r["outcome"] for r in records if r["level"] == level and not r["extension"])
        if c:
            by_level[level] = {o: c.get(o, 0) for o in OUTCOMES}
    ext = Counter(r["outcome"] for r in records if r["extension"])
    if ext:
        by_level["extension"] = {o: ext.get(o, 0) for o in OUTCOMES}
    return {
        "instances": len(records),
        "checks": len({r["check"] for r in records}),
        "outcomes": {o: counts.get(o, 0) for o in OUTCOMES},
        "by_level": by_level,
        "categories": dict(Counter(r["category"] for r in records if r.get("category"))),
        "tokens": {key: sum((r.get("tokens") or {}).get(key, 0) for r in records)
                   for key in ("prompt", "completion", "unmetered")},
        "requests": sum(r.get("sent", r.get("requests", 0)) for r in records),
        "retries": sum(r.get("retries", 0) for r in records),
    }


def not_run(run_dir: Path) -> list[str]:
    """Check instances left out because the token budget ran out."""
    return sorted(line for path in (run_dir / "not-run").glob("*.txt")
                  for line in path.read_text(encoding="utf-8").splitlines() if line)


def build_matrix(run_dir: Path, target: Target, base_url: str, started: float,
                 configuration: dict | None = None) -> dict:
    records = read_results(run_dir)
    checks = check_rows(records, target.models)
    left_out = not_run(run_dir)
    if left_out:
        (run_dir / "not-run.json").write_text(json.dumps(left_out, indent=2), encoding="utf-8")
    return {
        "format": FORMAT,
        "run": {
            "id": run_dir.name,
            "target": target.name,
            "description": target.description,
            "base_url": "embedded reference server" if target.embedded else base_url,
            "models": list(target.models),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "suite_version": _version("openai-conformance"),
            "openai_sdk": _version("openai"),
            "python": platform.python_version(),
            "definitions": "INTERPRETING.md (outcomes and parameter verdicts, version 2)",
            # the run id (unique even in a reused folder), selection, quirks and faults, from the plugin
            **(configuration or {}),
        },
        "summary": {**summarise(records), "not_run": len(left_out)},
        "parameters": parameter_verdicts(records, target),
        "checks": checks,
        "causes": root_causes(records),
        "failing_checks": failing_checks(checks),
    }


def write_reports(run_dir: Path, target: Target, base_url: str, started: float,
                  configuration: dict | None = None) -> dict:
    matrix = build_matrix(run_dir, target, base_url, started, configuration)
    write_matrix(run_dir, matrix)
    from .evidence import write_evidence_pages
    write_evidence_pages(run_dir, matrix)
    return matrix


def write_matrix(run_dir: Path, matrix: dict, published: set[str] | None = None) -> None:
    """matrix.json, .md and .html; `published`: the evidence a published folder keeps (the pages link
    only that; None: all)."""
    (run_dir / "matrix.json").write_text(json.dumps(matrix, indent=2, ensure_ascii=False), encoding="utf-8")
    (run_dir / "matrix.md").write_text(render_markdown(matrix, published), encoding="utf-8")
    (run_dir / "matrix.html").write_text(render_html(matrix, published), encoding="utf-8")


def record_history(run_dir: Path, matrix: dict, history_path: Path) -> tuple[dict, int]:
    """Compare the run with the previous like run (same target identity, selection, quirks, faults), mark
    the changes in its matrix, add the trend of like runs, and append the run to the history. Returns
    the matrix and the count of unreadable lines."""
    from . import history

    entries, damaged = history.read(history_path)
    entry = history.entry_for(matrix)
    matrix["changes"] = history.changes(history.previous(entries, entry), matrix)
    matrix["trend"] = [{"run": e["run"], "target": e["target"], "finished": e.get("finished"),
                        "scores": e.get("scores", {})} for e in [*entries, entry] if history.is_like(e, entry)]
    history.append(history_path, entry)
    write_matrix(run_dir, matrix)
    return matrix, damaged
