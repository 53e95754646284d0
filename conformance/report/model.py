"""The report model: everything a reader of a run is shown, computed once, in one place.

The pipeline runs one way:

    records (report/results.py) + target + catalogue + history (history.py, causes.py)
        -> model (this module: build_matrix, report_of, merged_report)
        -> renderers (render.py: terminal, Markdown, HTML; render_merged.py; evidence.py's check pages;
           allure.py's metadata; export.py)
        -> writers (matrix.py: a run's folder; merge.py: a merged folder; finish.py: the end of a run)

`build_matrix` computes the data a run's matrix.json holds: per check outcomes, per parameter
verdicts (with the failing checks behind them), root causes, failing checks, headline counts, and,
given the history, the changes since the previous like run and the trend of like runs.
`report_of` turns that data (just built, or read back from a run folder) into a `RunReport`: the
frozen views every renderer draws from (headline, cells with their counts and change marks,
failing parameters, every failed instance with its link, summary shares, trend points), so that
the terminal, the Markdown, the HTML and a merged report cannot disagree.  `merged_report` does
the same for several runs.  Nothing here writes a file or draws text beyond the headline sentence.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections import Counter, defaultdict
from importlib import metadata
from types import MappingProxyType, SimpleNamespace
from typing import Mapping

from ..config.catalogue import load_catalogue
from ..vocabulary import LEVELS as LEVEL_ORDER
from ..vocabulary import OUTCOME_ORDER, OUTCOMES, VERDICT_ORDER
from ..config.targets import Declared, Docs, Target
from . import history
from .causes import failing_checks, root_causes
from .terms import check_page, instance_sort_key, target_identity

FORMAT = 1
MERGED_FORMAT = 1
LEVELS = ("MUST", "SHOULD", "extension")  # what a score is given for
ENDPOINTS = ("chat", "completions", "responses")
NOT_WORKING = ("broken", "rejected", "ignored", "deviates")
EMBEDDED = "embedded reference server"  # a run's base_url when the target is the embedded server

__all__ = ["FORMAT", "MERGED_FORMAT", "OUTCOME_ORDER", "VERDICT_ORDER", "build_matrix", "report_of", "merged_report",
           "target_of_matrix",
           "RunReport", "MergedReport", "Headline", "CheckCell", "FailingParameter", "FailedInstance", "LevelShare",
           "TrendPoint", "TargetSummary", "Column"]


# --- the data: records -> matrix.json ----------------------------------------------------------------

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
    return sorted(rows, key=lambda x: (LEVEL_ORDER.index(x["level"]), x["check"]))


def parameter_verdicts(records: list[dict], target: Target) -> list[dict]:
    """Per parameter of the catalogue and model: the verdict, its evidence and notes, and the failing
    checks about it (a parameter with a failing check is never green)."""
    catalogue = load_catalogue()
    observed: dict[tuple[str, str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for r in records:
        for obs in r.get("observations", []):
            key = (obs["endpoint"], obs["parameter"], r["dimensions"]["model"])
            observed[key].append((obs["verdict"], r["evidence_file"], obs.get("note", "")))
    failing_by_parameter = _failing_by_parameter(records, {(e, p.name) for e in ENDPOINTS
                                                           for p in catalogue.for_endpoint(e)})
    rows = []
    for endpoint in ENDPOINTS:
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
    """Per check: its outcome per model (the worst instance, with the counts), cost, and every instance."""
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
                           "message": i["message"], "category": i.get("category"), "cause": i.get("cause"),
                           "evidence": i["evidence_file"], "requests": i["requests"],
                           "retries": i["retries"]}
                          for i in instances],
        })
    return rows


def summarise(records: list[dict]) -> dict:
    """The headline counts: outcomes overall and per level (MUST, SHOULD, MAY, extension), categories, cost."""
    counts = Counter(r["outcome"] for r in records)
    by_level: dict[str, dict[str, int]] = {}
    for level in LEVEL_ORDER:
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
        **_confirmed_alone(records),
    }


def _confirmed_alone(records: list[dict]) -> dict:
    """How many instances were run again alone (wire/alone.py), and how many of those then passed."""
    again = [r["confirmed_alone"] for r in records if r.get("confirmed_alone")]
    if not again:
        return {}
    return {"confirmed_alone": {"instances": len(again), "passed_alone": sum(a.get("alone") == "pass" for a in again)}}


def scores(matrix: dict) -> dict[str, dict]:
    """Per level: check x model cells passed among those judged (pass, fail or error), and under
    `instances` the check instances likewise (the run's own summary counts those). Every page
    shows both, each named for what it counts: the history and the trend keep the cells."""
    counts: dict[str, Counter] = {level: Counter() for level in LEVELS}
    for row in matrix["checks"]:
        level = "extension" if row["extension"] else row["level"]
        if level not in counts:
            continue
        for cell in row["models"].values():
            counts[level][cell["outcome"]] += 1
    out = {}
    for level, c in counts.items():
        judged = c["pass"] + c["fail"] + c["error"]
        out[level] = {"passed": c["pass"], "judged": judged,
                      "share": round(c["pass"] / judged, 4) if judged else None}
        by_instance = matrix["summary"]["by_level"].get(level)
        if by_instance:
            passed, judged = by_instance["pass"], by_instance["pass"] + by_instance["fail"] + by_instance["error"]
            out[level]["instances"] = {"passed": passed, "judged": judged,
                                       "share": round(passed / judged, 4) if judged else None}
    return out


def history_entry(matrix: dict) -> dict:
    """The run as its history line keeps it: what a later run is compared with, and its scores."""
    run = matrix["run"]
    return {
        "format": history.HISTORY_FORMAT,
        "run": run["id"],
        "target": run["target"],
        "base_url": run.get("base_url"),
        "selection": run.get("selection"),
        "quirks": run.get("quirks", []),
        "faults": run.get("faults"),
        **({"shard": run["shard"]} if run.get("shard") else {}),
        "models": run["models"],
        "finished": run["finished"],
        "outcomes": matrix["summary"]["outcomes"],
        "scores": scores(matrix),
        "checks": {row["id"]: {m: cell["outcome"] for m, cell in row["models"].items()} for row in matrix["checks"]},
        "parameters": {f"{row['endpoint']}.{row['parameter']}": {m: cell["verdict"] for m, cell in row["models"].items()}
                       for row in matrix["parameters"]},
    }


def changes(before: dict | None, matrix: dict) -> dict | None:
    """What changed since `before` (a history entry), per check and model: regressed, fixed, new."""
    if before is None:
        return None
    out: dict = {"previous_run": before["run"], "previous_finished": before.get("finished"),
                 "regressed": [], "fixed": [], "new": []}
    for row in matrix["checks"]:
        old = before["checks"].get(row["id"], {})
        for model, cell in row["models"].items():
            now, then = cell["outcome"], old.get(model)
            item = {"check": row["id"], "model": model, "before": then, "after": now}
            if then is None:
                out["new"].append(item)
            elif then == "pass" and now in ("fail", "error"):
                out["regressed"].append(item)
            elif then in ("fail", "error") and now == "pass":
                out["fixed"].append(item)
    return out


def change_marks(change: dict | None) -> dict[tuple[str, str], str]:
    """(check, model) -> 'regressed' | 'fixed' | 'new', for marking cells."""
    if not change:
        return {}
    return {(i["check"], i["model"]): kind for kind in ("regressed", "fixed", "new") for i in change[kind]}


def build_matrix(records: list[dict], target: Target, base_url: str, started: float, run_id: str,
                 not_run: list[str] | None = None, configuration: dict | None = None,
                 history_entries: list[dict] | None = None, finished: float | None = None) -> dict:
    """Everything about one run, as matrix.json holds it. `history_entries`: the run history (None:
    no history, so no changes and no trend); the run is compared with the latest like run in it.
    `finished`: when the run ended (default: now; the last shard's end for combined shards)."""
    parameters = parameter_verdicts(records, target)
    causes = root_causes(records, parameters)  # before the counts: it gives each failure its cause's category
    checks = check_rows(records, target.models)
    matrix = {
        "format": FORMAT,
        "run": {
            "id": run_id,
            "target": target.name,
            "description": target.description,
            "base_url": EMBEDDED if target.embedded else base_url,
            "models": list(target.models),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
            "suite_version": _version("openai-conformance"),
            "openai_sdk": _version("openai"),
            "python": platform.python_version(),
            "definitions": "INTERPRETING.md (outcomes and parameter verdicts, version 3)",
            # the run id (unique even in a reused folder), selection, quirks and faults, from the plugin
            **(configuration or {}),
        },
        "summary": {**summarise(records), "not_run": len(not_run or []),
                    # a run stopped before its end: what was judged, of what was collected
                    **({"partial": {**configuration["partial"], "judged": len(records)}}
                       if configuration and configuration.get("partial") else {})},
        "parameters": parameters,
        "checks": checks,
        "causes": causes,
        "failing_checks": failing_checks(checks),
    }
    if history_entries is not None:
        entry = history_entry(matrix)
        matrix["changes"] = changes(history.previous(history_entries, entry), matrix)
        matrix["trend"] = [{"run": e["run"], "target": e["target"], "finished": e.get("finished"),
                            "scores": e.get("scores", {})}
                           for e in [*history_entries, entry] if history.is_like(e, entry)]
    return matrix


def target_of_matrix(matrix: dict) -> Target:
    """The target as a run's matrix recorded it: what build_matrix reads of a target (name, description,
    models, whether embedded, the declarations and the documentation's claims behind the parameter
    rows), so that the records of a run's shards make the same matrix the whole run would have."""
    run, rows = matrix["run"], matrix["parameters"]
    declared = tuple(sorted({r["parameter"] for r in rows if r["declared"] == "declared"}))
    docs = next((r["docs"] for r in rows if r.get("docs")), None)
    claims = tuple(sorted({(r["parameter"], r["docs"]["claim"]) for r in rows if r.get("docs") and r["docs"]["claim"]}))
    return Target(name=run["target"], models=tuple(run["models"]), description=run.get("description", ""),
                  embedded=run["base_url"] == EMBEDDED, base_url=None if run["base_url"] == EMBEDDED else run["base_url"],
                  # a declared name is looked up among the parameters or the extensions, as its kind says
                  declared=Declared(parameters=declared, extensions=declared,
                                    unsupported=tuple(sorted({r["parameter"] for r in rows
                                                              if r["declared"] == "declared unsupported"}))),
                  docs=Docs(url=docs["url"], claims=claims) if docs else Docs())


# --- the views: matrix.json -> what the renderers draw ------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Headline:
    """The counts of the one sentence a reader must see first."""

    failed: int  # failed check instances
    errors: int  # instances that ended in error
    must: int  # failed instances at MUST level (over the causes)
    causes: int
    checks: int  # checks with a failed instance
    partial: tuple[int, int] | None = None  # a run stopped before its end: (instances judged, collected)

    @property
    def bad(self) -> bool:
        return bool(self.failed or self.errors or self.partial)  # a partial run never reads as a clean one

    @property
    def text(self) -> str:
        if self.failed:
            text = (f"{self.failed} failed check instances ({self.must} at MUST level) from {self.causes} cause(s), "
                    f"in {self.checks} checks")
        else:
            text = "No deviation: every judged check instance passed"
        if self.errors:
            text += f"; {self.errors} instances ended in error (not judged)"
        if self.partial:
            judged, collected = self.partial
            text = (f"PARTIAL RUN, stopped before its end: {judged} of {collected or '?'} check instances judged. "
                    + text)
        return text


def headline_of(summary: dict, causes: list[dict], failing: list[dict]) -> Headline:
    partial = summary.get("partial")
    return Headline(failed=summary["outcomes"]["fail"], errors=summary["outcomes"]["error"],
                    must=sum(c["instances"] for c in causes if c["level"] == "MUST"), causes=len(causes),
                    checks=sum(1 for c in failing if c["failed"]),
                    partial=(partial["judged"], partial["collected"]) if partial else None)


@dataclasses.dataclass(frozen=True)
class LevelShare:
    """One level's line of the summary: check instances passed among those judged (pass, fail,
    error: an error is not a pass), and the same for the check x model cells (the merged report's
    and the history's base)."""

    level: str
    passed: int
    judged: int
    cells_passed: int = 0
    cells_judged: int = 0


@dataclasses.dataclass(frozen=True)
class CheckCell:
    """One check x model cell: the worst outcome, the counts behind it, where it links, the change mark."""

    outcome: str
    counts: tuple[tuple[str, int], ...]  # by outcome name
    link: str  # the check's page at the model (or a lone instance's evidence)
    message: str
    change: str | None  # 'regressed' | 'fixed' | 'new' since the previous like run

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


def check_cell(cell: dict, change: str | None = None) -> CheckCell:
    return CheckCell(outcome=cell["outcome"], counts=tuple(sorted(cell["counts"].items())),
                     link=cell.get("page") or cell["evidence"], message=cell["message"] or "", change=change)


@dataclasses.dataclass(frozen=True)
class FailingParameter:
    """A parameter verdict that is not a working one, for the models that share it."""

    endpoint: str
    parameter: str
    models: tuple[str, ...]
    verdict: str
    failing: tuple[dict, ...]  # the failing checks about it (check, level, failed, evidence, message)
    notes: tuple[str, ...]


def failing_parameters(parameters: list[dict]) -> tuple[FailingParameter, ...]:
    """Every parameter verdict that is not a working one, the models that share the same verdict and
    failing checks together; a refusal the target declares is left out."""
    out: list[FailingParameter] = []
    for row in parameters:
        same: dict[tuple, tuple[list[str], dict]] = {}
        for model, cell in row["models"].items():
            if cell["verdict"] not in NOT_WORKING:
                continue
            if cell["verdict"] == "rejected" and row["declared"] == "declared unsupported":
                continue
            key = (cell["verdict"], tuple(f["check"] for f in cell.get("failing") or []))
            same.setdefault(key, ([], cell))[0].append(model)
        out += [FailingParameter(row["endpoint"], row["parameter"], tuple(models), cell["verdict"],
                                 tuple(cell.get("failing") or []), tuple(cell.get("notes") or []))
                for models, cell in same.values()]
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class FailedInstance:
    """One failed or errored instance, and whether it links its evidence."""

    check: str
    instance: dict
    linked: bool  # False: a published folder does not keep its evidence

    @property
    def evidence(self) -> str:
        return self.instance["evidence"]


@dataclasses.dataclass(frozen=True)
class TrendPoint:
    """One like run on the trend: its MUST and SHOULD pass shares (None: nothing judged)."""

    run: str
    shares: Mapping[str, float | None]


def trend_points(entries: list[dict], target: str) -> tuple[TrendPoint, ...]:
    """The trend of `target` from history entries (or a matrix's `trend`), in their order."""
    return tuple(TrendPoint(e["run"], MappingProxyType({level: (e.get("scores", {}).get(level) or {}).get("share")
                                                        for level in ("MUST", "SHOULD")}))
                 for e in entries if e["target"] == target)


@dataclasses.dataclass(frozen=True)
class RunReport:
    """One run, as every renderer shows it. `matrix` is the data (matrix.json, not to be changed);
    the other fields are computed from it once."""

    matrix: dict
    headline: Headline
    levels: tuple[LevelShare, ...]  # the summary's per level lines
    categories: tuple[tuple[str, int], ...]  # failures by category, the commonest first
    cells: Mapping[tuple[str, str], CheckCell]  # (check, model)
    failing_parameters: tuple[FailingParameter, ...]
    failed_instances: tuple[FailedInstance, ...]
    trend: tuple[TrendPoint, ...] | None  # None: made apart from any history
    published: frozenset[str] | None  # the evidence a published folder keeps (None: all)

    @property
    def run(self) -> dict:
        return self.matrix["run"]

    @property
    def models(self) -> list[str]:
        return self.matrix["run"]["models"]

    @property
    def summary(self) -> dict:
        return self.matrix["summary"]

    @property
    def causes(self) -> list[dict]:
        return self.matrix.get("causes", [])

    @property
    def failing_checks(self) -> list[dict]:
        return self.matrix.get("failing_checks", [])

    @property
    def changes(self) -> dict | None:
        return self.matrix.get("changes")

    @property
    def requests_per_instance(self) -> float:
        return self.summary["requests"] / max(1, self.summary["instances"])


def report_of(matrix: dict, published: set[str] | None = None) -> RunReport:
    """The views of a run's matrix (built now or read from its folder); `published`: the evidence a
    published folder keeps, the other instances are shown without a link."""
    s = matrix["summary"]
    marks = change_marks(matrix.get("changes"))
    cells = {(row["id"], m): check_cell(cell, marks.get((row["id"], m)))
             for row in matrix["checks"] for m, cell in row["models"].items()}
    failed = tuple(FailedInstance(row["id"], i, published is None or i["evidence"] in published)
                   for row in matrix["checks"] for i in row["instances"] if i["outcome"] in ("fail", "error"))
    scored = scores(matrix)
    return RunReport(
        matrix=matrix,
        headline=headline_of(s, matrix.get("causes", []), matrix.get("failing_checks", [])),
        levels=tuple(LevelShare(level, c["pass"], c["pass"] + c["fail"] + c["error"],
                                (scored.get(level) or {}).get("passed", 0), (scored.get(level) or {}).get("judged", 0))
                     for level, c in s["by_level"].items()),
        categories=tuple(sorted((s.get("categories") or {}).items(), key=lambda item: -item[1])),
        cells=MappingProxyType(cells),
        failing_parameters=failing_parameters(matrix["parameters"]),
        failed_instances=failed,
        trend=trend_points(matrix["trend"], matrix["run"]["target"]) if matrix.get("trend") else None,
        published=frozenset(published) if published is not None else None,
    )


def published_evidence(matrix: dict) -> set[str]:
    """The evidence a published report keeps of a run: every file its matrix links to (cells,
    deviations, causes, parameter verdicts), and on each check page the first instance of each
    outcome per model, the worst first; the rest of the instances are listed without a link."""
    kept: set[str] = set()

    def walk(value, key=""):
        if key == "instances":
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and value.startswith("evidence/") and value.endswith(".json"):
            kept.add(value)

    walk(matrix)
    for row in matrix.get("checks", []):
        seen = set()
        for i in sorted(row.get("instances") or [], key=instance_sort_key):
            if i.get("evidence") and (i["model"], i["outcome"]) not in seen:
                seen.add((i["model"], i["outcome"]))
                kept.add(i["evidence"])
    return kept


# --- several runs: the merged report -------------------------------------------------------------------

def run_identity(run: dict) -> str:
    """What a run (its matrix's `run`) tested, as Allure names it: the target, and the quirks and
    faults of its server."""
    faults = run.get("faults")
    return target_identity(run["target"], run.get("quirks") or (),
                           SimpleNamespace(rates=faults["rates"], seed=faults["seed"]) if faults else None)


@dataclasses.dataclass(frozen=True)
class TargetSummary:
    """One run of a merged report: its scores, headline, deviations and trend."""

    run: str
    target: str
    label: str  # what it tested, with the run id where that appears more than once
    description: str
    models: tuple[str, ...]
    scores: Mapping[str, dict]
    summary: dict
    changes: dict | None
    headline: Headline
    causes: list[dict]
    failing_checks: list[dict]
    trend: tuple[TrendPoint, ...]  # like runs of the history, up to this one

    @property
    def prefix(self) -> str:
        """Where the run's own pages are in the merged folder."""
        return f"runs/{self.run}/"


@dataclasses.dataclass(frozen=True)
class Column:
    """A column of a merged table: a run's model; `first`: the run's first model (a docs column precedes it)."""

    run: str
    model: str
    first: bool


@dataclasses.dataclass(frozen=True)
class MergedReport:
    """Several runs, as the merged renderers show them. `merged` is the data (the merged matrix.json)."""

    merged: dict
    targets: tuple[TargetSummary, ...]
    columns: tuple[Column, ...]
    cells: Mapping[tuple[str, str, str], CheckCell]  # (run, check, model), links into runs/<run id>/
    # endpoint -> its rows: (row, cells), the cells in column order, ('declared', (declared, docs) or None)
    # before each run's models, then ('verdict', cell or None) per model
    parameter_rows: Mapping[str, tuple]
    with_history: bool  # False: a published folder, made apart from any history

    @property
    def checks(self) -> list[dict]:
        return self.merged["checks"]

    @property
    def differences(self) -> list[dict]:
        return self.merged["differences"]


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


def merged_matrix(matrices: list[dict]) -> dict:
    """The data of a merged report (its matrix.json): per run its scores and deviations, the parameter
    verdicts and checks side by side, links into runs/<run id>/, and where the runs differ."""
    targets = []
    for m in matrices:
        run = m["run"]
        targets.append({"run": run["id"], "target": run["target"], "description": run.get("description", ""),
                        "base_url": run["base_url"], "models": run["models"], "finished": run["finished"],
                        "scores": scores(m), "summary": m["summary"], "changes": m.get("changes"),
                        "causes": m.get("causes", []), "failing_checks": m.get("failing_checks", []),
                        "identity": run_identity(run)})
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
    return merged


def _labels(targets: list[dict]) -> dict[str, str]:
    """Column labels: what each run tested, with the run id where that appears more than once."""
    names = [t.get("identity", t["target"]) for t in targets]
    return {t["run"]: name if names.count(name) == 1 else f"{name} ({t['run']})" for t, name in zip(targets, names)}


def _columns(targets: list[dict]) -> tuple[Column, ...]:
    out, seen = [], set()
    for t in targets:
        for model in t["models"]:
            out.append(Column(t["run"], model, t["run"] not in seen))
            seen.add(t["run"])
    return tuple(out)


def _parameter_rows(merged: dict, endpoint: str, columns: tuple[Column, ...]) -> tuple:
    """The parameter rows of an endpoint, each with its cells in column order: ('declared', (declared,
    docs)) before each run's models, then ('verdict', cell or None) per model."""
    rows = []
    for row in merged["parameters"]:
        if row["endpoint"] != endpoint:
            continue
        cells = []
        for column in columns:
            cell = row["runs"].get(column.run)
            if column.first:
                cells.append(("declared", (cell["declared"], cell.get("docs")) if cell else None))
            cells.append(("verdict", cell["models"].get(column.model) if cell else None))
        rows.append((row, tuple(cells)))
    return tuple(rows)


def merged_report(matrices: list[dict], history_entries: list[dict] | None = None,
                  with_history: bool = True) -> MergedReport:
    """Several runs' matrices as one report; `history_entries` give each run its changes marks'
    context and its trend (the like runs up to it)."""
    merged = merged_matrix(matrices)
    label = _labels(merged["targets"])
    columns = _columns(merged["targets"])
    entries = history_entries or []
    targets = tuple(TargetSummary(
        run=t["run"], target=t["target"], label=label[t["run"]], description=t["description"],
        models=tuple(t["models"]), scores=MappingProxyType(t["scores"]), summary=t["summary"], changes=t["changes"],
        headline=headline_of(t["summary"], t["causes"], t["failing_checks"]), causes=t["causes"],
        failing_checks=t["failing_checks"],
        trend=trend_points(history.like_runs(entries, t["run"]), t["target"])) for t in merged["targets"])
    marks = {t["run"]: change_marks(t["changes"]) for t in merged["targets"]}
    cells = {(run_id, row["id"], model): check_cell(cell, marks[run_id].get((row["id"], model)))
             for row in merged["checks"] for run_id, by_model in row["runs"].items() for model, cell in by_model.items()}
    return MergedReport(merged=merged, targets=targets, columns=columns, cells=MappingProxyType(cells),
                        parameter_rows=MappingProxyType({e: _parameter_rows(merged, e, columns) for e in ENDPOINTS}),
                        with_history=with_history)
