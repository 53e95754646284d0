"""Judge each used feature from a run's matrix, and the traffic as a whole: go or no-go.

Feature states, worst first:
- `broken`       a MUST check failed (or the parameter was rejected / broke the request);
- `unsupported`  the target cleanly refuses it, so the application's requests would fail;
- `unknown`      nothing judged it (not in the run, or every instance inconclusive or in error);
- `caveat`       only a SHOULD check failed, or a non-blocking feature (error shapes, auth);
- `works`        every check that decides it passed;
- `not covered`  no check exists for it (e.g. a parameter OpenAI's reference does not list).

The traffic is NO-GO when a blocking feature is broken or unsupported, UNDETERMINED when a
blocking one is unknown, GO otherwise (with its caveats listed).
"""

from __future__ import annotations

import dataclasses

from ..harness.checks import selected
from .features import BY_CHECKS, BY_VERDICT, Use

STATES = ("broken", "unsupported", "unknown", "caveat", "works", "not covered")
GO, NO_GO, UNDETERMINED = "GO", "NO-GO", "UNDETERMINED"
PARAMETER_FAILURES = ("rejected", "broken")


@dataclasses.dataclass
class CheckFinding:
    check: str
    level: str
    statement: str
    outcome: str  # fail, unsupported, pass or unknown
    instances: int
    judged: int  # instances that passed or failed
    example: dict | None  # the first failing (else unsupported) instance: model, mode, path, message, evidence


@dataclasses.dataclass
class FeatureVerdict:
    use: Use
    state: str
    reason: str
    findings: list[CheckFinding]
    parameter_verdicts: dict[str, dict]  # model -> {"verdict", "evidence"}

    @property
    def workaround(self) -> str:
        return self.use.feature.workaround if self.state in ("broken", "unsupported", "caveat") else ""


def _instances(row: dict, pattern: str, modes: set[str]) -> list[dict]:
    chosen = [i for i in row["instances"] if selected([pattern], row["id"], row["endpoint"], i.get("variant"))]
    in_modes = [i for i in chosen if i["mode"] in modes]
    if in_modes or not modes:
        return in_modes or chosen
    # A check run unstreamed only (acceptance, error shapes) judges what streamed requests rely on
    # too; one run streamed only says nothing about unstreamed requests.
    return chosen if all(i["mode"] == "regular" for i in chosen) else []


def _finding(row: dict, instances: list[dict]) -> CheckFinding:
    outcomes = [i["outcome"] for i in instances]
    outcome = next((o for o in ("fail", "unsupported", "pass") if o in outcomes), "unknown")
    example = next((i for i in instances if i["outcome"] == outcome), None) if outcome != "pass" else None
    return CheckFinding(row["id"], row["level"], row["statement"], outcome, len(instances),
                        sum(o in ("pass", "fail") for o in outcomes),
                        None if example is None else {k: example.get(k) for k in
                                                      ("model", "mode", "path", "variant", "message", "evidence")})


def findings_for(use: Use, matrix: dict) -> list[CheckFinding]:
    findings = []
    for pattern in use.feature.checks:
        for row in matrix["checks"]:
            instances = _instances(row, pattern, use.modes)
            if instances:
                findings.append(_finding(row, instances))
    merged: dict[str, CheckFinding] = {}
    for f in findings:  # one check reached by two patterns counts once
        merged.setdefault(f.check, f)
    return list(merged.values())


def parameter_verdicts(use: Use, matrix: dict) -> dict[str, dict]:
    name = use.feature.parameter
    for row in matrix.get("parameters", []):
        if name and row["parameter"] == name and row["endpoint"] == use.feature.endpoint:
            return {m: {"verdict": c["verdict"], "evidence": (c.get("evidence") or [None])[0],
                        "failing": c.get("failing", [])} for m, c in row["models"].items()}
    return {}


def _state_by_checks(feature, findings: list[CheckFinding]) -> tuple[str, str]:
    if not findings:
        return "unknown", "none of its checks is in the run"
    failed_must = [f for f in findings if f.outcome == "fail" and f.level == "MUST"]
    failed_other = [f for f in findings if f.outcome == "fail" and f.level != "MUST"]
    refused = [f for f in findings if f.outcome == "unsupported"]
    if failed_must:
        names = ", ".join(f.check for f in failed_must)
        return ("broken" if feature.blocking else "caveat"), f"MUST failed: {names}"
    if refused:
        names = ", ".join(f.check for f in refused)
        return ("unsupported" if feature.blocking else "caveat"), f"refused by the target: {names}"
    if failed_other:
        return "caveat", "SHOULD failed: " + ", ".join(f.check for f in failed_other)
    if not any(f.outcome == "pass" for f in findings):
        return "unknown", "every instance was inconclusive or in error"
    unknown = [f.check for f in findings if f.outcome == "unknown"]
    if unknown:
        return "works", "passed; not judged: " + ", ".join(unknown)
    return "works", f"{len(findings)} check(s) passed"


def _state_by_verdict(feature, verdicts: dict[str, dict]) -> tuple[str, str]:
    seen = {v["verdict"] for v in verdicts.values()}
    failing = seen & set(PARAMETER_FAILURES)
    if failing:
        return "broken", f"`{feature.parameter}` {'/'.join(sorted(failing))}: requests that send it fail"
    if not seen or seen == {"not measured"}:
        return "unknown", f"`{feature.parameter}` was not measured"
    if "deviates" in seen:
        # Sent with its default value, the failing clauses about its effect do not bite; say so.
        failed = sorted({f["check"] for v in verdicts.values() for f in v.get("failing", [])})
        return "caveat", f"`{feature.parameter}` is accepted, but checks about its effect fail: {', '.join(failed)}"
    return "works", f"`{feature.parameter}` is accepted ({', '.join(sorted(seen))})"


def judge(uses: list[Use], matrix: dict) -> list[FeatureVerdict]:
    verdicts = []
    for use in uses:
        f = use.feature
        # A parameter sent with its default value is run through its checks only to measure its
        # verdict: their outcomes are about values the application does not send.
        findings = findings_for(use, matrix) if f.checks and f.judged_by == BY_CHECKS else []
        params = parameter_verdicts(use, matrix)
        if f.judged_by == BY_CHECKS:
            state, reason = _state_by_checks(f, findings)
        elif f.judged_by == BY_VERDICT:
            state, reason = _state_by_verdict(f, params)
        else:
            state, reason = "not covered", "no check covers it: the suite cannot say whether it works"
        verdicts.append(FeatureVerdict(use, state, reason, findings, params))
    return sorted(verdicts, key=lambda v: (STATES.index(v.state), -v.use.count, v.use.feature.key))


def skipped_unjudged(traffic, uses: list[Use]) -> list[str]:
    """The skipped entries that may ask for a feature no request that was read asks for: every unreadable
    one (what it asks was not judged: an endpoint the suite does not check, a body that is not JSON), and
    those whose features are not among the judged ones; each as 'line 3: why'. Any of them makes a GO
    undetermined: it was not read, so it was not judged."""
    from .features import features_of

    judged = {u.feature.key for u in uses}
    out = []
    for skipped in traffic.skipped:
        if skipped.request is None:
            out.append(f"{skipped.where}: {skipped.reason}")
            continue
        missing = sorted(set(features_of(skipped.request)) - judged)
        if missing:
            out.append(f"{skipped.where}: asks for {', '.join(missing)}, which no request that was read does")
    return out


def overall(verdicts: list[FeatureVerdict], unjudged: list[str] = ()) -> str:
    states = {v.state for v in verdicts}
    if states & {"broken", "unsupported"}:
        return NO_GO
    if any(v.state == "unknown" and v.use.feature.blocking for v in verdicts) or unjudged:
        return UNDETERMINED
    return GO
