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

import contextlib
import dataclasses
import gc
import io
import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path

from ..config.targets import load_target
from ..pytest_plugin import LEAN_PYTEST_ARGS
from ..report.matrix import write_matrix
from ..report.model import build_matrix, report_of
from ..report.results import read_results
from ..server.quirks import Quirk, registry
from .pruning import Pruned, Pruner, prune_each, replayable

BASELINE = "(none)"
SELFTEST_MODEL = "ref-small"
RUN_TIMEOUT_SECONDS = 900  # a quirk's run that takes longer is stopped and reported as producing nothing
INTERRUPTED = 2  # pytest's exit code for a session interrupted (here: stopped at its time limit)


@dataclasses.dataclass
class QuirkRun:
    quirk: str
    outcomes: dict[str, str]  # check id -> worst outcome across its instances
    features: dict[str, str]  # check id -> feature
    verdicts: dict[str, str]  # "chat.stop" -> verdict for the self-test model
    returncode: int
    output_tail: str
    pruned: Pruned | None = None  # how the run was cut (None: the whole suite ran)
    causes: tuple[str, ...] = ()  # the names of the causes its report found (one is the aim: report/causes.py)


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


def _node_paths(nodeids: list[str]) -> list[str]:
    """The node ids as pytest takes them from any folder: their files made absolute (a node id's file
    is relative to the run's rootdir, the suites' folder or one above it)."""
    suites = Path(_suites_dir())
    out = []
    for nodeid in nodeids:
        file, _, rest = nodeid.partition("::")
        root = next((d for d in (suites, *suites.parents) if (d / file).is_file()), None)
        out.append(f"{root / file}::{rest}" if root is not None else nodeid)
    return out


def _pytest_args(quirk: str | None, run_dir: Path, out_dir: Path, model: str, only: list[str] | None = None,
                 record_requests: bool = False) -> list[str]:
    """pytest's arguments for the suite against the reference server with this quirk (None: none);
    `only`: these instances."""
    target = out_dir / "selftest-target.toml"
    if not target.is_file():
        selftest_target(out_dir)
    selection = [_suites_dir()]
    if only is not None:  # node ids in an arguments file (`pytest @FILE`): a command line has a limit
        listing = out_dir / "instances" / f"{quirk or 'baseline'}.txt"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("\n".join(_node_paths(only)) + "\n", encoding="utf-8")
        selection = [f"@{listing}"]
    args = [*selection, "--target", str(target), "--model", model,
            "--report-dir", str(run_dir), "-q", "-p", "no:cacheprovider", "--no-header", "-rN", "--tb=no",
            # The kill matrix reads the matrices only: no history, no comparison, no Allure files.
            "--no-history", "--no-expectations", "-p", "no:allure_pytest", *LEAN_PYTEST_ARGS]
    if quirk:
        args += ["--server-quirk", quirk]
    if record_requests:
        args += ["--record-requests"]
    return args


def _pytest(quirk: str | None, run_dir: Path, out_dir: Path, model: str,
            record_requests: bool = False) -> subprocess.CompletedProcess:
    """The whole suite in a pytest process of its own."""
    args = _pytest_args(quirk, run_dir, out_dir, model, record_requests=record_requests)
    return subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_SECONDS, cwd=out_dir)


def judge_again(pruned: Pruned, out_dir: Path, model: str,
                timeout: int = RUN_TIMEOUT_SECONDS) -> tuple[int, str]:
    """pytest on the instances `pruned` lists, in this process: (exit code, the output's end). A task for
    the self-test's worker processes, which run many one after another, so that the interpreter, pytest,
    the openai SDK and the suites are started and imported once, not once a quirk (most of a short run's
    time). A session keeps nothing for the next: the plugin's state lives on its config; what it froze
    for the garbage collector (gc.freeze after collection) is let go here. A session still going after
    `timeout` seconds is interrupted (as a whole run's process would be killed): exit code 2."""
    import pytest

    run_dir = out_dir / "runs" / pruned.quirk
    (run_dir / "matrix.json").unlink(missing_ok=True)  # an earlier self-test's, in a reused folder
    output = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = pytest.main(_pytest_args(pruned.quirk, run_dir, out_dir, model, only=list(pruned.rerun)))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    gc.unfreeze()
    gc.collect()
    return int(code), output.getvalue()[-2000:]


def _timed_out(signum, frame) -> None:
    raise KeyboardInterrupt("the quirk's run went on past its time limit")


def _quirk_run(name: str, matrix: dict, model: str, returncode: int, output: str,
               pruned: Pruned | None = None) -> QuirkRun:
    outcomes = {row["id"]: row["models"][model]["outcome"] for row in matrix["checks"] if model in row["models"]}
    features = {row["id"]: row["feature"] for row in matrix["checks"]}
    verdicts = {f"{p['endpoint']}.{p['parameter']}": p["models"][model]["verdict"] for p in matrix["parameters"]}
    causes = tuple(c.get("name") or c["signature"] for c in matrix.get("causes", []))
    return QuirkRun(name, outcomes, features, verdicts, returncode, output, pruned, causes)


def run_one(quirk: str | None, out_dir: Path, model: str = SELFTEST_MODEL,
            keep_evidence: bool = False, record_requests: bool = False) -> QuirkRun:
    """The whole suite against the quirk (None: the plain reference)."""
    name = quirk or BASELINE
    run_dir = out_dir / "runs" / (quirk or "baseline")
    done = _pytest(quirk, run_dir, out_dir, model, record_requests=record_requests)
    matrix_path = run_dir / "matrix.json"
    if not matrix_path.is_file():
        return QuirkRun(name, {}, {}, {}, done.returncode, (done.stdout + done.stderr)[-2000:])
    if not keep_evidence:
        prune_passed_evidence(run_dir)
    return _quirk_run(name, json.loads(matrix_path.read_text()), model, done.returncode, done.stdout[-600:])


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The baseline run, as every pruned quirk's run reads it: read once."""

    run_dir: Path
    records: list[dict]
    run: dict  # its matrix's "run"
    target: object  # the self-test's target (config.targets.Target)

    @classmethod
    def read(cls, run_dir: Path, out_dir: Path) -> "Baseline":
        return cls(run_dir, read_results(run_dir), json.loads((run_dir / "matrix.json").read_text())["run"],
                   load_target(str(out_dir / "selftest-target.toml")))


def run_pruned(pruned: Pruned, judged: tuple[int, str] | None, baseline: Baseline | None, out_dir: Path,
               model: str = SELFTEST_MODEL, keep_evidence: bool = False) -> QuirkRun:
    """The quirk's run: the instances it can change, `judged` again under pytest (judge_again: its exit code
    and output; None when there were none), and every other instance's baseline record (pruning.py says
    why they are the same), made one run folder as a whole run would have written it, each carried record
    marked `"carried": "baseline"`. (A run stopped at its time limit judges nothing: the baseline is not read.)"""
    run_dir = out_dir / "runs" / pruned.quirk
    if judged is None:
        for stale in ("results", "evidence"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
    elif judged[0] == INTERRUPTED or not (run_dir / "matrix.json").is_file():  # a partial run judges nothing
        return QuirkRun(pruned.quirk, {}, {}, {}, judged[0], judged[1], pruned)
    again = read_results(run_dir) if judged is not None else []
    nodeids = {r["nodeid"] for r in again}
    carried = [{**r, "carried": "baseline"} for r in baseline.records if r["nodeid"] not in nodeids]
    (run_dir / "results").mkdir(parents=True, exist_ok=True)
    with open(run_dir / "results" / "carried-from-baseline.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in carried)
    for record in carried:  # the evidence of what did not pass, as a run keeps it
        for path in (Path(record["evidence_file"]), Path(record["evidence_file"]).with_suffix(".html")):
            if (baseline.run_dir / path).is_file() and not (run_dir / path).is_file():
                (run_dir / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(baseline.run_dir / path, run_dir / path)
    if not keep_evidence:
        prune_passed_evidence(run_dir)
    configuration = {"id": f"{pruned.quirk}-pruned", "quirks": [pruned.quirk], "faults": None,
                     "selection": baseline.run.get("selection"),
                     "pruned": {"judged_again": len(nodeids), "carried_from_baseline": len(carried)}}
    matrix = build_matrix(again + carried, baseline.target, baseline.run["base_url"], time.time(), run_dir.name,
                          configuration=configuration)
    write_matrix(run_dir, report_of(matrix))
    code, output = judged if judged is not None else (0, "no instance rests on an answer the quirk changes")
    return _quirk_run(pruned.quirk, matrix, model, code, output[-600:], pruned)


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

    def judged_again(self, quirk: str) -> tuple[int, int] | None:
        """(instances judged again under pytest, instances) of a pruned run; None: run whole."""
        pruned = self.runs[quirk].pruned
        return (len(pruned.rerun), pruned.instances) if pruned is not None else None

    def differences(self, other: "KillMatrix") -> list[str]:
        """Every cell where `other` (the same quirks, judged otherwise: pruned against whole) differs:
        a check's outcome under a quirk, or a parameter verdict under it; one line each."""
        out = []
        for name in sorted(set(self.runs) | set(other.runs)):
            mine, theirs = self.runs.get(name), other.runs.get(name)
            if mine is None or theirs is None:
                out.append(f"{name}: run by one matrix only")
                continue
            for kind, a, b in (("check", mine.outcomes, theirs.outcomes), ("verdict", mine.verdicts, theirs.verdicts)):
                out += [f"{name}: {kind} {key}: {a.get(key)} against {b.get(key)}"
                        for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
        return out

    def causes_summary(self) -> str:
        """'Of the 162 quirks caught, 140 read as one cause, 15 as two, ...'."""
        counts = Counter(len(run.causes) for q, run in self.runs.items() if not self.quirks[q].variation and run.causes)
        caught = sum(counts.values())
        rest = ", ".join(f"{n} as {k}" for k, n in sorted(counts.items()) if k > 1)
        return f"Of the {caught} quirks caught, {counts.get(1, 0)} read as one cause" + (f", {rest}." if rest else ".")

    def to_json(self) -> dict:
        return {
            "model": SELFTEST_MODEL,
            "checks": {c: {"killed_by": self.killers(c), "feature": self.baseline.features.get(c)} for c in self.checks},
            "quirks": {q: {"description": self.quirks[q].description, "variation": self.quirks[q].variation,
                           "features": list(self.quirks[q].features), "caught_by": self.caught_by(q),
                           "verdicts": {f: self.runs[q].verdicts.get(f) for f, _ in self.quirks[q].verdicts},
                           "judged_again": self.judged_again(q), "causes": list(self.runs[q].causes)}
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
        lines += ["", "## Quirks", "",
                  "judged again: the check instances run under pytest against the quirk; the others rest only on "
                  "answers it does not change and keep the baseline's outcome (conformance/selftest/pruning.py).", "",
                  "| quirk | kind | judged again | caught by |", "|---|---|---|---|"]
        for q, run in self.runs.items():
            kind = "variation (must pass)" if self.quirks[q].variation else "quirk"
            again = self.judged_again(q)
            share = f"{again[0]} of {again[1]}" if again else "all (run whole)"
            lines.append(f"| `{q}` | {kind} | {share} | {', '.join(self.caught_by(q)) or '-'} |")
        lines += ["", "## Causes per quirk", "",
                  "How many causes each quirk's report names (report/causes.py): one deviation should read as one "
                  f"cause. {self.causes_summary()}", ""]
        lines += [f"- `{q}`: " + "; ".join(run.causes) for q, run in self.runs.items() if len(run.causes) > 1]
        problems = self.problems()
        lines += ["", "## Problems", ""] + ([f"- {p}" for p in problems] or ["None."])
        return "\n".join(lines) + "\n"


def run_all(out_dir: Path, names: list[str] | None = None, workers: int = 2,
            keep_evidence: bool = False, full: bool = False) -> KillMatrix:
    """The kill matrix of these quirks (default: all). Pruned (pruning.py): the baseline records what
    each instance's outcome rests on; `workers` processes find each quirk's changes to those answers
    without pytest, then judge again, in pytest sessions of their own, only the instances those touch.
    A quirk that remembers earlier requests, and every quirk with `full`, runs the whole suite in a
    pytest process of its own (`workers` at a time), as before the pruning."""
    out_dir.mkdir(parents=True, exist_ok=True)
    selftest_target(out_dir)
    quirks = registry()
    names = list(names or quirks)
    whole = names if full else [n for n in names if not replayable(quirks[n])]
    runs: dict[str, QuirkRun] = {}
    with ThreadPoolExecutor(max_workers=workers) as threads:
        baseline = threads.submit(run_one, None, out_dir, keep_evidence=keep_evidence, record_requests=not full)
        futures = {name: threads.submit(run_one, name, out_dir, keep_evidence=keep_evidence) for name in whole}
        pruned = [n for n in names if n not in whole]
        if pruned:
            baseline.result()
            base = Baseline.read(out_dir / "runs" / "baseline", out_dir)
            for cut, judged in _judged_again(Pruner(base.records), pruned, out_dir, workers):
                runs[cut.quirk] = run_pruned(cut, judged, base, out_dir, keep_evidence=keep_evidence)
        runs.update({name: f.result() for name, f in futures.items()})
    matrix = KillMatrix(baseline.result(), {name: runs[name] for name in names}, quirks)
    (out_dir / "kill-matrix.json").write_text(json.dumps(matrix.to_json(), indent=2))
    (out_dir / "kill-matrix.md").write_text(matrix.to_markdown())
    return matrix


PRUNE_BATCH = 12  # quirks a replay task takes: a quirk's re-judging starts once its batch is done


def _judged_again(pruner: Pruner, names: list[str], out_dir: Path, workers: int):
    """(Pruned, judge_again's result or None) of each named quirk, from `workers` processes: first the
    replay (prune_each, in batches), then each quirk's instances judged again as soon as its batch is done.
    The processes are spawned, not forked: this process has threads (the whole runs) when they start."""
    batches = [names[i:i + PRUNE_BATCH] for i in range(0, len(names), PRUNE_BATCH)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as processes:
        judging = []
        for done in as_completed([processes.submit(prune_each, pruner, batch) for batch in batches]):
            for cut in done.result():
                judging.append((cut, processes.submit(judge_again, cut, out_dir, SELFTEST_MODEL) if cut.rerun else None))
        for cut, judged in judging:
            yield cut, judged.result() if judged is not None else None
