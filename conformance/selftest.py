"""The mutation self-test: run the suite against every quirk of the reference server.

It proves the verdicts can be trusted:
  (a) every check fails on at least one quirk (a check nothing can break proves nothing);
  (b) every quirk is caught by a check of the feature it breaks, and moves the parameter
      verdicts it names (e.g. ignore-stop -> stop `ignored`);
  (c) the unmutated server passes everything (but what its target declares unsupported), and so
      does every legal variation.
The result is a kill matrix (checks x quirks), written as JSON and Markdown.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .pytest_plugin import LEAN_PYTEST_ARGS
from .report.results import read_results
from .server.quirks import Quirk, registry

BASELINE = "(none)"
SELFTEST_MODEL = "ref-small"


@dataclasses.dataclass
class QuirkRun:
    quirk: str
    outcomes: dict[str, str]  # check id -> worst outcome across its instances
    features: dict[str, str]  # check id -> feature
    verdicts: dict[str, str]  # "chat.stop" -> verdict for the self-test model
    returncode: int
    output_tail: str


def _suites_dir() -> str:
    import conformance.suites

    return list(conformance.suites.__path__)[0]


def selftest_target(out_dir: Path) -> Path:
    """The reference target with a short retry backoff: quirks that drop connections are retried
    many times, and waiting half a second before each retry would only make the self-test slow."""
    from importlib import resources

    text = resources.files("conformance.target_files").joinpath("reference.toml").read_text(encoding="utf-8")
    path = out_dir / "selftest-target.toml"
    path.write_text(text.replace("[limits]\n", "[limits]\nretry_base_seconds = 0.01\n", 1), encoding="utf-8")
    return path


def prune_passed_evidence(run_dir: Path) -> int:
    """Delete the evidence of the instances that passed; returns how many files went.

    A full self-test is some 170 suite runs of 2,000 instances each, about 20 MB of evidence a run: 3.5 GB
    that nobody reads. What a reader of a kill-matrix cell opens is the evidence of a failure, an error or
    an inconclusive instance, and that is kept (as are every run's records and matrix)."""
    removed = 0
    for record in read_results(run_dir):
        if record.get("outcome") != "pass" or not record.get("evidence_file"):
            continue
        evidence = run_dir / record["evidence_file"]
        for path in (evidence, evidence.with_suffix(".html")):
            if path.is_file():
                path.unlink()
                removed += 1
    return removed


def run_one(quirk: str | None, out_dir: Path, model: str = SELFTEST_MODEL,
            keep_evidence: bool = False) -> QuirkRun:
    name = quirk or BASELINE
    run_dir = out_dir / "runs" / (quirk or "baseline")
    target = out_dir / "selftest-target.toml"
    if not target.is_file():
        selftest_target(out_dir)
    cmd = [sys.executable, "-m", "pytest", _suites_dir(), "--target", str(target), "--model", model,
           "--report-dir", str(run_dir), "-q", "-p", "no:cacheprovider", "--no-header", "-rN", "--tb=no",
           # The kill matrix reads the matrices only: no history, no comparison, no Allure files.
           "--no-history", "--no-expectations", "-p", "no:allure_pytest", *LEAN_PYTEST_ARGS]
    if quirk:
        cmd += ["--server-quirk", quirk]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=out_dir)
    matrix_path = run_dir / "matrix.json"
    if not matrix_path.is_file():
        return QuirkRun(name, {}, {}, {}, done.returncode, (done.stdout + done.stderr)[-2000:])
    matrix = json.loads(matrix_path.read_text())
    if not keep_evidence:
        prune_passed_evidence(run_dir)
    outcomes = {row["id"]: row["models"][model]["outcome"] for row in matrix["checks"] if model in row["models"]}
    features = {row["id"]: row["feature"] for row in matrix["checks"]}
    verdicts = {f"{p['endpoint']}.{p['parameter']}": p["models"][model]["verdict"] for p in matrix["parameters"]}
    return QuirkRun(name, outcomes, features, verdicts, done.returncode, done.stdout[-600:])


@dataclasses.dataclass
class KillMatrix:
    baseline: QuirkRun
    runs: dict[str, QuirkRun]  # quirk name -> run
    quirks: dict[str, Quirk]

    @property
    def checks(self) -> list[str]:
        return sorted(self.baseline.outcomes)

    def killers(self, check_id: str) -> list[str]:
        return [q for q, run in self.runs.items()
                if not self.quirks[q].variation and run.outcomes.get(check_id) == "fail"]

    def caught_by(self, quirk: str) -> list[str]:
        return sorted(c for c, o in self.runs[quirk].outcomes.items() if o == "fail")

    def problems(self) -> list[str]:
        out = []
        # `unsupported` is allowed: the reference target declares what its toy model does not offer.
        failing = {c: o for c, o in self.baseline.outcomes.items() if o not in ("pass", "unsupported")}
        if not self.baseline.outcomes:
            out.append(f"(c) the baseline run produced no results: {self.baseline.output_tail}")
        if failing:
            out.append(f"(c) the unmutated server does not pass everything: {failing}")
        # (a) needs every quirk: a run of a few (`selftest --quirk NAME`) cannot say a check is unkillable.
        for check_id in self.checks if set(self.runs) == set(self.quirks) else ():
            if not self.killers(check_id):
                out.append(f"(a) no quirk makes {check_id} fail")
        for name, run in self.runs.items():
            quirk = self.quirks[name]
            if not run.outcomes:
                out.append(f"{name}: the run produced no results: {run.output_tail}")
                continue
            if quirk.variation:
                bad = {c: o for c, o in run.outcomes.items() if o in ("fail", "error")}
                if bad:
                    out.append(f"(variation) {name} is legal but was flagged: {bad}")
                continue
            on_feature = [c for c in self.caught_by(name) if run.features[c] in quirk.features]
            if not on_feature:
                out.append(f"(b) {name} is not caught by a check of {', '.join(quirk.features)} "
                           f"(caught by: {', '.join(self.caught_by(name)) or 'nothing'})")
            for feature, expected in quirk.verdicts:
                seen = run.verdicts.get(feature)
                if seen != expected:
                    out.append(f"(b) {name}: the verdict of {feature} is {seen!r}, expected {expected!r}")
        return out

    def to_json(self) -> dict:
        return {
            "model": SELFTEST_MODEL,
            "checks": {c: {"killed_by": self.killers(c), "feature": self.baseline.features.get(c)} for c in self.checks},
            "quirks": {q: {"description": self.quirks[q].description, "variation": self.quirks[q].variation,
                           "features": list(self.quirks[q].features), "caught_by": self.caught_by(q),
                           "verdicts": {f: self.runs[q].verdicts.get(f) for f, _ in self.quirks[q].verdicts}}
                       for q in self.runs},
            "problems": self.problems(),
        }

    def to_markdown(self) -> str:
        names = [q for q in self.runs if not self.quirks[q].variation]
        lines = ["# Kill matrix", "",
                 f"Checks (rows) x quirks of the reference server (columns), model `{SELFTEST_MODEL}`: "
                 "`X` = the check fails on that quirk.", "",
                 "| check | killed by | " + " | ".join(f"`{q}`" for q in names) + " |",
                 "|---|---|" + "---|" * len(names)]
        for c in self.checks:
            cells = ["X" if self.runs[q].outcomes.get(c) == "fail" else "" for q in names]
            lines.append(f"| `{c}` | {len(self.killers(c))} | " + " | ".join(cells) + " |")
        lines += ["", "## Quirks", "", "| quirk | kind | caught by |", "|---|---|---|"]
        for q, run in self.runs.items():
            kind = "variation (must pass)" if self.quirks[q].variation else "quirk"
            lines.append(f"| `{q}` | {kind} | {', '.join(self.caught_by(q)) or '-'} |")
        problems = self.problems()
        lines += ["", "## Problems", ""] + ([f"- {p}" for p in problems] or ["None."])
        return "\n".join(lines) + "\n"


def run_all(out_dir: Path, names: list[str] | None = None, workers: int = 2,
            keep_evidence: bool = False) -> KillMatrix:
    out_dir.mkdir(parents=True, exist_ok=True)
    selftest_target(out_dir)
    quirks = registry()
    names = list(names or quirks)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        baseline = pool.submit(run_one, None, out_dir, keep_evidence=keep_evidence)
        futures = {name: pool.submit(run_one, name, out_dir, keep_evidence=keep_evidence) for name in names}
        runs = {name: f.result() for name, f in futures.items()}
    matrix = KillMatrix(baseline.result(), runs, quirks)
    (out_dir / "kill-matrix.json").write_text(json.dumps(matrix.to_json(), indent=2))
    (out_dir / "kill-matrix.md").write_text(matrix.to_markdown())
    return matrix
