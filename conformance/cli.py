"""`conformance run | serve | targets | migrate | report | expectations | export | manifest | selftest`:
the command-line entry point. Each command is one `cmd_*` function, chosen with `set_defaults(func=)`;
the options a run shares with the pytest plugin are declared once, in options.py.

Exit codes of `run`: 0 nothing deviates, 1 deviations found, 2 usage error (bad target file,
missing key, bad option), 3 no deviation but the run was incomplete (infrastructure errors:
unreachable target, persistent 5xx/429 after retries).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import options
from .report.finish import EXIT_DEVIATIONS, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE

MAX_REPLAY = 100
DEFAULT_SERVE_KEY = "reference-key"


def _fail_usage(message: str) -> int:
    print(f"conformance: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conformance", description="OpenAI-compatibility conformance suite")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the checks against a target and write the matrix")
    run.set_defaults(func=cmd_run)
    options.add_to_argparse(run, options.TARGET + options.RUN + options.EMBEDDED)
    run.add_argument("--no-model-check", action="store_true",
                     help="run even when the target's /models does not list the models (it serves unlisted ones)")
    run.add_argument("-n", "--workers", default="auto",
                     help="parallel workers (pytest-xdist); 'auto' = the target's concurrency, at most the CPUs "
                          "for the embedded server (it shares them) and 4 per CPU for a live target")
    run.add_argument("-k", dest="keyword", help="only checks whose test name matches this pytest -k expression")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")

    serve = sub.add_parser("serve", help="serve the embedded reference server")
    serve.set_defaults(func=cmd_serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key-env", help=f"variable holding the key to accept (default key: {DEFAULT_SERVE_KEY})")
    serve.add_argument("--model", action="append", dest="models", metavar="ID", help="model ids to serve")
    serve.add_argument("--quirk", action="append", dest="quirks", default=[], metavar="NAME",
                       help="reproduce a real-world deviation (repeatable); --list-quirks lists them")
    serve.add_argument("--list-quirks", action="store_true", help="list the quirks and legal variations, then exit")
    serve.add_argument("--faults", metavar="SPEC", help="inject transient faults at seeded rates, e.g. "
                                                        "429=0.2,503=0.1,reset=0.05,cut=0.03,stall=0.02")
    serve.add_argument("--fault-seed", type=int, default=0, help="seed of the injected faults (default 0)")
    serve.add_argument("--stall-seconds", type=float, default=5.0, help="how long a stall lasts (default 5)")
    serve.add_argument("--latency-ms", type=float, default=0.0, metavar="MS",
                       help="add MS milliseconds to every request, as a model server's time to the first token")
    serve.add_argument("--token-latency-ms", type=float, default=0.0, metavar="MS",
                       help="add MS milliseconds per generated token; streamed events are paced by it")
    serve.add_argument("--serial", action="store_true",
                       help="answer one request at a time, as Ollama's default or a one-slot llama-server does")
    serve.add_argument("--overhead-ms", type=float, default=0.0, metavar="MS",
                       help="every request spends MS milliseconds before it waits for its turn (with --serial: a "
                            "server whose HTTP side is concurrent and whose generations are serial)")
    serve.add_argument("--verbose", action="store_true", help="log every request")
    serve.add_argument("--request-log", metavar="FILE", help="write every request received to FILE (JSON Lines, "
                                                             "keys redacted; the benchmark replays it)")

    sub.add_parser("targets", help="list the known targets").set_defaults(func=cmd_targets)

    migrate = sub.add_parser("migrate", help="go / no-go for your own traffic: the features your requests use, "
                                             "and whether each works on the target")
    migrate.set_defaults(func=cmd_migrate)
    options.add_to_argparse(migrate, options.TARGET)
    migrate.add_argument("--requests", required=True, metavar="FILE",
                         help="your requests: JSON Lines (OpenAI batch lines, {endpoint, body} or bare bodies) "
                              "or a HAR file")
    migrate.add_argument("--from-run", metavar="RUN_DIR", help="judge from an earlier run (reports/<run id>) "
                                                               "instead of running the checks")
    migrate.add_argument("--out", help="where to write the report (default: reports/migrate-<time>-<target>)")
    migrate.add_argument("-n", "--workers", default="auto", help="parallel workers for the checks (default auto)")
    migrate.add_argument("--replay", type=int, default=0, metavar="N",
                         help=f"also send up to N (at most {MAX_REPLAY}) of your requests to --reference and to "
                              "the target, and compare the structure of the answers")
    migrate.add_argument("--reference", default="reference",
                         help="the reference for --replay (default: the embedded reference server; "
                              "'openai' for OpenAI itself, with its key)")
    options.add_to_argparse(migrate, (options.QUIRK,))

    report = sub.add_parser("report", help="merge runs into one matrix (one folder to publish), with history "
                                           "and the Allure HTML report")
    report.set_defaults(func=cmd_report)
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (reports/<run id>)")
    report.add_argument("--out", help="where to write it (default: reports/merged; with --combine-shards, "
                                      "reports/<run id> beside the first shard)")
    report.add_argument("--combine-shards", action="store_true",
                        help="the RUN_DIRs are the shards of one run (`conformance run --shard I/N`): make them one "
                             "run folder, compared with the target's expectations and appended to the history, "
                             "with `conformance run`'s exit code")
    report.add_argument("--history", help="the run history for trends (default: history.jsonl beside the first run); "
                                          "with --combine-shards, the combined run is appended to it")
    report.add_argument("--no-allure", action="store_true", help="do not render the Allure HTML report")
    options.add_to_argparse(report, tuple(o for o in options.RUN if o.name in ("expectations", "no_expectations")))
    report.add_argument("--publish", action="store_true",
                        help="a folder to commit or host: of each run's evidence only what its pages link to and one "
                             "instance per outcome of each check; no Allure report and no local history")

    expectations = sub.add_parser("expectations", help="write a target's known deviations from a run")
    expectations_sub = expectations.add_subparsers(dest="action", required=True)
    update = expectations_sub.add_parser("update", help="write expectations/<target>.toml from a run's matrix.json")
    update.set_defaults(func=cmd_expectations_update)
    update.add_argument("run_dir", help="a run directory (reports/<run id>)")
    update.add_argument("--out", help="the file to write (default: expectations/<target>.toml)")

    export = sub.add_parser("export", help="a run's measured support as data: a LiteLLM model list or a JSON "
                                           "support profile")
    export.set_defaults(func=cmd_export)
    export.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (reports/<run id>)")
    export.add_argument("--format", choices=("litellm", "json"), default="json",
                        help="litellm: model_list with model_info.supported_openai_params (YAML); json: parameter "
                             "-> verdict per model (default)")
    export.add_argument("--api-key-env", help="litellm: the variable LiteLLM reads the key from (os.environ/VAR)")
    export.add_argument("--out", help="the file to write (default: standard output)")

    manifest = sub.add_parser("manifest", help="print (or --write) the generated manifest of all checks")
    manifest.set_defaults(func=cmd_manifest)
    manifest.add_argument("--write", action="store_true", help="write suites/MANIFEST.md")

    selftest = sub.add_parser("selftest", help="run the suite against every quirk of the reference server and "
                                               "write the kill matrix")
    selftest.set_defaults(func=cmd_selftest)
    selftest.add_argument("--quirk", action="append", dest="quirks", metavar="NAME", help="only these quirks")
    selftest.add_argument("--out", default="reports/self-test", help="where to write the kill matrix")
    selftest.add_argument("-j", "--jobs", type=int, default=2, help="suite runs at a time (default 2)")
    selftest.add_argument("--full", action="store_true",
                          help="run the whole suite against every quirk (by default only the check instances "
                               "resting on an answer the quirk changes are judged again; the others keep the "
                               "baseline's outcome)")
    selftest.add_argument("--keep-evidence", action="store_true",
                          help="keep the evidence of passing instances too (by default a run keeps only the "
                               "evidence of what did not pass: a full self-test would write some 3.5 GB)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def cmd_expectations_update(args) -> int:
    from .config import expectations

    matrix_path = Path(args.run_dir) / "matrix.json"
    if not matrix_path.is_file():
        return _fail_usage(f"{matrix_path} does not exist: give the directory of a finished run")
    matrix = json.loads(matrix_path.read_text(encoding="utf-8"))
    target = matrix["run"]["target"]
    out = Path(args.out) if args.out else expectations.default_path(target)
    try:
        existing = expectations.load(out) if out.is_file() else {}
    except expectations.ExpectationsError as exc:
        return _fail_usage(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    header = expectations.hand_written_header(out.read_text(encoding="utf-8")) if out.is_file() else []
    out.write_text(expectations.render(target, matrix, existing, header), encoding="utf-8")
    print(f"wrote {out}")
    return EXIT_OK


def cmd_export(args) -> int:
    from .report.export import export
    from .report.merge import ReportError, load_run

    try:
        matrix = load_run(Path(args.run_dir))
    except ReportError as exc:
        return _fail_usage(str(exc))
    text = export(matrix, args.format, args.api_key_env)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_combine_shards(args) -> int:
    """`conformance report --combine-shards SHARD_DIR...`: the shards of one run as one run folder."""
    from .config import expectations
    from .report.finish import exit_code, terminal_lines
    from .report.merge import ReportError, load_run
    from .config.shards import whole_run_id
    from .report.shards import combine_shards

    if args.publish:
        return _fail_usage("--combine-shards writes a run folder: publish it with `conformance report DIR --publish`")
    run_dirs = [Path(d) for d in args.run_dirs]
    try:
        head = load_run(run_dirs[0])["run"]
    except ReportError as exc:
        return _fail_usage(str(exc))
    out = Path(args.out) if args.out else run_dirs[0].parent / whole_run_id(head["id"])
    history_path = Path(args.history) if args.history else run_dirs[0].parent / "history.jsonl"
    known = None
    expectations_path = expectations.chosen_path(args.expectations, args.no_expectations, head["target"])
    if expectations_path is not None:
        try:
            known = expectations.load(expectations_path)
        except expectations.ExpectationsError as exc:
            return _fail_usage(str(exc))
    try:
        combined = combine_shards(run_dirs, out, history_path, known, expectations_path)
    except ReportError as exc:
        return _fail_usage(str(exc))
    for line in terminal_lines(combined.end, 0.0)[:-1]:
        print(line)
    shards = ", ".join(map(str, combined.combined))
    print(f"combined shard(s) {shards} of {combined.count} into run {combined.run_id}: {out / 'matrix.html'} "
          f"({out / 'matrix.md'}, {out / 'matrix.json'})")
    for problem in combined.problems:
        print(f"conformance: {problem}", file=sys.stderr)
    code = exit_code(out)
    return EXIT_INCOMPLETE if code == EXIT_OK and not combined.complete else code


def cmd_report(args) -> int:
    from .report import allure, history
    from .report.merge import ReportError, merge
    from .report.render_merged import score_text

    if args.combine_shards:
        return cmd_combine_shards(args)
    run_dirs = [Path(d) for d in args.run_dirs]
    out = Path(args.out or "reports/merged")
    entries: list[dict] = []
    if not args.publish:  # a published report stands on its own: no trend from this machine's history
        history_path = Path(args.history) if args.history else run_dirs[0].parent / "history.jsonl"
        entries, damaged = history.read(history_path)
        if damaged:
            print(f"conformance: {damaged} unreadable line(s) in {history_path} were skipped", file=sys.stderr)
    try:
        merged = merge(run_dirs, out, entries, publish=args.publish)
    except ReportError as exc:
        return _fail_usage(str(exc))
    for t in merged["targets"]:
        print(f"{t.get('identity', t['target']):20} run {t['run']}: MUST {score_text(t['scores']['MUST'])}")
    print(f"merged matrix: {out / 'index.html'} ({out / 'matrix.md'}, {out / 'matrix.json'})")
    if not (args.no_allure or args.publish):
        results = [d / "allure-results" for d in run_dirs if (d / "allure-results").is_dir()]
        print(allure.render_html(results, out) if results else "Allure HTML not rendered: the runs have no "
                                                               "allure-results")
    return EXIT_OK


def cmd_manifest(args) -> int:
    from .registry import lint, manifest, manifest_path

    problems = lint()
    for problem in problems:
        print(f"conformance: check metadata: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    text = manifest()
    if args.write:
        manifest_path().write_text(text, encoding="utf-8")
        print(f"wrote {manifest_path()}")
    else:
        print(text, end="")
    return EXIT_OK


def cmd_selftest(args) -> int:
    from .selftest import run_all
    from .server.quirks import check_names

    try:
        names = sorted(check_names(args.quirks)) if args.quirks else None
    except ValueError as exc:
        return _fail_usage(str(exc))
    out = Path(args.out)
    matrix = run_all(out, names, workers=args.jobs, keep_evidence=args.keep_evidence, full=args.full)
    print(f"{len(matrix.checks)} checks x {len(matrix.runs)} quirks; kill matrix: {out / 'kill-matrix.md'}")
    cut = [again for again in map(matrix.judged_again, matrix.runs) if again is not None]
    if cut:  # pruned: what was judged again under pytest, against the whole suite once per quirk
        whole = len(matrix.runs) - len(cut)
        print(f"judged again under pytest: {sum(a for a, _ in cut)} of {sum(n for _, n in cut)} check instances "
              f"in {len(cut)} quirks ({sum(a for a, _ in cut) / max(1, sum(n for _, n in cut)):.1%}); "
              f"{whole} run whole; the rest rest only on answers the quirk does not change")
    print(matrix.causes_summary())
    if names:  # a few quirks: say what each one killed (the full matrix says which check nothing kills)
        for name in names:
            print(f"{name}: caught by {', '.join(matrix.caught_by(name)) or 'nothing'}")
    for problem in matrix.problems():
        print(f"problem: {problem}")
    return EXIT_DEVIATIONS if matrix.problems() else EXIT_OK


def cmd_targets(args) -> int:
    from .config.targets import TargetError, known_target_names, load_target

    for name in known_target_names():
        try:
            t = load_target(name)
            where = "embedded reference server" if t.embedded else t.base_url
            key = f", key from ${t.api_key_env}" if t.api_key_env else ""
            print(f"{name:12} {where}{key}; models: {', '.join(t.models)}")
        except TargetError as exc:
            print(f"{name:12} (invalid: {exc})")
    return EXIT_OK


def cmd_serve(args) -> int:
    from .server import DEFAULT_MODELS, ReferenceServer
    from .server.quirks import registry

    if args.list_quirks:
        try:
            for quirk in registry().values():
                kind = "variation" if quirk.variation else "quirk"
                print(f"{quirk.name:36} {kind:9} {quirk.description}")
        except BrokenPipeError:  # `| head` closed the pipe: nothing more to say
            sys.stderr.close()
        return EXIT_OK
    if args.api_key_env:
        key = os.environ.get(args.api_key_env, "")
        if not key:
            return _fail_usage(f"the environment variable {args.api_key_env} is empty: set it to the key to accept")
        shown = f"the value of ${args.api_key_env}"
    else:
        key, shown = DEFAULT_SERVE_KEY, DEFAULT_SERVE_KEY
    from .server.faults import FaultSpecError, parse_faults

    try:
        faults = parse_faults(args.faults, args.fault_seed, args.stall_seconds) if args.faults else None
        server = ReferenceServer(api_key=key, host=args.host, port=args.port, quirks=args.quirks,
                                 models=tuple(args.models or DEFAULT_MODELS), verbose=args.verbose, faults=faults,
                                 latency=args.latency_ms / 1000, token_latency=args.token_latency_ms / 1000,
                                 serial=args.serial, request_log=args.request_log, overhead=args.overhead_ms / 1000)
    except OSError as exc:
        return _fail_usage(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    except (ValueError, FaultSpecError) as exc:
        return _fail_usage(str(exc))
    quirks = f"; quirks: {', '.join(sorted(server.quirks))}" if server.quirks else ""
    if faults:
        quirks += f"; faults: {args.faults} (seed {args.fault_seed})"
    if args.serial:
        quirks += "; one request at a time"
    print(f"reference server on {server.base_url} (Bearer key: {shown}){quirks}; Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _suites_dir() -> Path:
    import conformance.suites

    return Path(list(conformance.suites.__path__)[0])


def _preflight(target) -> tuple[str | None, list[str] | None]:
    """(why the target cannot be reached, or None when it answers at all; the model ids its /models
    lists, or None when it answers no such list: missing, refused, or not OpenAI's shape)."""
    import httpx2

    try:
        response = httpx2.get(target.base_url.rstrip("/") + "/models", timeout=15.0, follow_redirects=False,
                              headers={"Authorization": f"Bearer {target.api_key()}", **dict(target.headers)})
    except httpx2.HTTPError as exc:
        return f"cannot reach {target.base_url}: {type(exc).__name__}: {exc}", None
    try:
        listed = response.json()["data"] if response.status_code == 200 else None
        ids = [m["id"] for m in listed] if isinstance(listed, list) else None
    except (ValueError, KeyError, TypeError):
        ids = None
    return None, ids if ids and all(isinstance(i, str) for i in ids) else None


def _workers(option: str, target) -> int:
    if option == "auto":
        cpus = os.cpu_count() or 1
        # The embedded server shares this machine's cores: as many workers as cores. A live target
        # keeps a worker waiting on the network most of the time: as many as the target allows.
        wanted = cpus if target.embedded else 4 * cpus
        workers = max(1, min(wanted, target.limits.concurrency))
        if not target.embedded and workers > 1 and "concurrency" not in target.limits_given:
            workers = _measured_workers(target, workers)
        return workers
    try:
        return max(0, int(option))
    except ValueError:
        raise SystemExit(_fail_usage(f"-n takes a number or 'auto', not {option!r}")) from None


def _measured_workers(target, wanted: int) -> int:
    """As many workers as the live target serves requests at once (a serial server gets one)."""
    from .wire.concurrency import measure

    model = target.models[0]
    capacity = measure(target.base_url, target.api_key(), model, wanted, target.limits.timeout_seconds,
                       dict(target.headers), chat="chat" in target.endpoints_for(model))
    if capacity is None:
        print(f"conformance: could not measure how many requests the target serves at once; {wanted} worker(s)",
              flush=True)
        return wanted
    print(f"conformance: {capacity.line()}", flush=True)
    return capacity.slots


def _run_pytest(args, target, run_dir: Path, workers: int, checks: list[str], extra: list[str]) -> int:
    """Run the suites in this process against the target of `args` (--target, --base-url, ...)."""
    import pytest

    from .pytest_plugin import LEAN_PYTEST_ARGS

    pytest_args = [str(_suites_dir()), "--target", args.target, "--report-dir", str(run_dir),
                   "--alluredir", str(run_dir / "allure-results"), "--clean-alluredir", "-p", "no:cacheprovider", "-q",
                   "--no-header", "-rN", "--tb=no", *LEAN_PYTEST_ARGS]
    pytest_args += options.as_pytest_args(args, options.TARGET[1:])  # --target is given above
    if workers > 1:
        pytest_args += ["-n", str(workers)]
    for pattern in checks:
        pytest_args += ["--check", pattern]
    where = "the embedded reference server" if target.embedded else target.base_url
    print(f"conformance: running the checks against {target.name} ({where}), models {', '.join(target.models)}, "
          f"{workers} worker(s); writing {run_dir}", flush=True)
    return pytest.main(pytest_args + extra)


def _reachable_target(args, name: str | None = None):
    """The target of --target (or `name`) with its key, after one request showed it answers;
    else the exit code, having said why in one line."""
    from .config.targets import TargetError, load_target

    try:
        target = load_target(name or args.target, base_url=None if name else args.base_url,
                             api_key_env=None if name else args.api_key_env, models=None if name else args.models)
        if not target.embedded:
            target.api_key()
    except TargetError as exc:
        return _fail_usage(str(exc))
    if not target.embedded:
        problem, served = _preflight(target)
        if problem:
            print(f"conformance: {problem}; nothing was run (check --base-url and your network)", file=sys.stderr)
            return EXIT_INCOMPLETE
        unserved = [m for m in target.models if m not in (served or ())]
        if served is None:
            print(f"conformance: {target.base_url}/models lists no models in OpenAI's shape, so the model names "
                  f"could not be checked before the run ({', '.join(target.models)} assumed served)", flush=True)
        elif unserved and not getattr(args, "no_model_check", False):
            refused = [m for m in unserved if not _answers_model(target, m)]
            for model in (m for m in unserved if m not in refused):
                print(f"conformance: {target.base_url}/models does not list {model!r}, yet the target answers it; "
                      "going on (the models checks judge the list)", flush=True)
            if refused:
                return _fail_usage(f"model {', '.join(map(repr, refused))} is not served by {target.name}: its /models "
                                   f"lists {', '.join(served[:12])}{' ...' if len(served) > 12 else ''} (pass --model "
                                   "with one of them, or --no-model-check to run anyway)")
    return target


def _answers_model(target, model: str) -> bool:
    """Whether a one-token request for `model` is answered with success: a model a target's /models leaves
    out may still be served (llama-cpp-python's server answers any name); one it refuses is a typo."""
    import httpx2

    chat = "chat" in target.endpoints_for(model)
    body = {"model": model, "max_tokens": 1, **({"messages": [{"role": "user", "content": "Hi"}]} if chat
                                                 else {"prompt": "Hi"})}
    try:
        response = httpx2.post(target.base_url.rstrip("/") + ("/chat/completions" if chat else "/completions"),
                               json=body, timeout=max(15.0, target.limits.timeout_seconds), follow_redirects=False,
                               headers={"Authorization": f"Bearer {target.api_key()}", **dict(target.headers)})
    except httpx2.HTTPError:
        return True  # not a refusal: the run says what goes wrong with the checks' own requests
    return 200 <= response.status_code < 300


def cmd_run(args) -> int:
    import pytest

    from .config.shards import Shard
    from .pytest_plugin.session import new_run_id, run_dir_for, sharded_run_id
    from .report.finish import exit_code

    try:
        shard = Shard.parse(args.shard) if args.shard is not None else None
    except ValueError as exc:
        return _fail_usage(str(exc))
    target = _reachable_target(args)
    if isinstance(target, int):
        return target
    refused = _embedded_options_refused(args, target)
    if refused:
        return _fail_usage(refused)
    from .config import expectations

    # Read here only to refuse a broken file in one line before anything runs; the plugin compares.
    expectations_path = expectations.chosen_path(args.expectations, args.no_expectations, target.name)
    if expectations_path is not None:
        try:
            expectations.load(expectations_path)
        except expectations.ExpectationsError as exc:
            return _fail_usage(str(exc))
    # A folder of its own is named after the run; a given folder (reused nightly) gets a new id inside.
    run_id = None if args.report_dir else sharded_run_id(new_run_id(target), shard)
    run_dir = Path(args.report_dir) if args.report_dir else run_dir_for(target, run_id)
    workers = _workers(args.workers, target)
    extra = ["-k", args.keyword] if args.keyword else []
    if run_id:
        extra += ["--run-id", run_id]
    # The history, the expectations and the summary are the plugin's, as for `pytest suites --target X`.
    forwarded = tuple(o for o in options.RUN + options.EMBEDDED if o.name not in ("report_dir", "checks"))
    extra += options.as_pytest_args(args, forwarded)
    (run_dir / "matrix.json").unlink(missing_ok=True)  # a reused folder: never judge last night's matrix
    code = _run_pytest(args, target, run_dir, workers, args.checks, extra + args.pytest_args)
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return _fail_usage(f"pytest could not run the suites (exit {int(code)}); see the lines above")
    if code == pytest.ExitCode.INTERRUPTED:
        print("conformance: interrupted; the report holds what had run", file=sys.stderr)
    if not (run_dir / "matrix.json").is_file():
        print("conformance: no check ran, so no matrix was written (is the -k expression too narrow?)",
              file=sys.stderr)
        return EXIT_USAGE
    return exit_code(run_dir, interrupted=code == pytest.ExitCode.INTERRUPTED)


def _embedded_options_refused(args, target) -> str | None:
    """Why --server-quirk or --server-faults cannot be, in one line (before any report folder exists)."""
    if not (args.server_quirks or args.server_faults):
        return None
    if not target.embedded:
        return "--server-quirk and --server-faults apply to the embedded reference server only"
    from .server.faults import FaultSpecError, parse_faults
    from .server.quirks import check_names

    try:
        check_names(args.server_quirks)
        if args.server_faults:
            parse_faults(args.server_faults, args.server_fault_seed, target.limits.timeout_seconds + 1)
    except (ValueError, FaultSpecError) as exc:
        return str(exc)
    return None


def _report_skipped(source: str, traffic) -> None:
    for skipped in traffic.skipped:
        print(f"conformance: {source}: {skipped.line()}", file=sys.stderr)


def _migration_dir(target_name: str) -> str:
    import time

    return f"reports/migrate-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{target_name}"


def cmd_migrate(args) -> int:
    import pytest

    from .migrate import report as migration_report
    from .migrate.features import check_patterns, uses_of
    from .migrate.traffic import TrafficError, read_traffic
    from .migrate.verdicts import GO, NO_GO, judge, overall, skipped_unjudged

    if not 0 <= args.replay <= MAX_REPLAY:
        return _fail_usage(f"--replay takes 0 to {MAX_REPLAY} requests, not {args.replay}")
    if args.server_quirks:
        from .server.quirks import check_names

        try:
            check_names(args.server_quirks)
        except ValueError as exc:
            return _fail_usage(str(exc))
    try:
        traffic = read_traffic(Path(args.requests))
    except TrafficError as exc:
        return _fail_usage(str(exc))
    uses = uses_of(traffic)
    target = None
    if args.from_run:
        run_dir = Path(args.from_run)
        if not (run_dir / "matrix.json").is_file():
            return _fail_usage(f"{run_dir / 'matrix.json'} does not exist: give the directory of a finished run")
        _report_skipped(args.requests, traffic)
        matrix = json.loads((run_dir / "matrix.json").read_text(encoding="utf-8"))
        out = Path(args.out or _migration_dir(matrix["run"]["target"]))
    else:
        target = _reachable_target(args)
        if isinstance(target, int):
            return target
        out = Path(args.out or _migration_dir(target.name))
        run_dir = out / "run"
        _report_skipped(args.requests, traffic)
        # A migration's run judges one application's traffic: not a run of the target's history.
        quirks = [a for q in args.server_quirks for a in ("--server-quirk", q)] + ["--no-history", "--no-expectations"]
        code = _run_pytest(args, target, run_dir, _workers(args.workers, target), check_patterns(uses), quirks)
        if code in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
            return _fail_usage(f"pytest could not run the checks (exit {int(code)}); see the lines above")
        if not (run_dir / "matrix.json").is_file():
            return _fail_usage("no check ran, so there is nothing to judge from")
        matrix = json.loads((run_dir / "matrix.json").read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    verdicts = judge(uses, matrix)
    unjudged = skipped_unjudged(traffic, uses)
    decision = overall(verdicts, unjudged)
    replayed = None
    if args.replay:
        from .migrate.replay import replay, sample

        candidate = target or _reachable_target(args)
        reference = _reachable_target(args, args.reference)
        for side in (candidate, reference):
            if isinstance(side, int):
                return side
        replayed = replay(sample(traffic.requests, args.replay), reference, candidate, out, tuple(args.server_quirks))
    data = migration_report.build(traffic, verdicts, decision, matrix,
                                  migration_report.relative_link(run_dir, out), replayed, unjudged)
    (out / "migration.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "migration.md").write_text(migration_report.render_markdown(data), encoding="utf-8")
    (out / "migration.html").write_text(migration_report.render_html(data), encoding="utf-8")
    print()
    for line in migration_report.summary_lines(data):
        print(line)
    if replayed is not None:
        differing = [r for r in replayed if r.differences]
        quirks = f" with quirks {', '.join(args.server_quirks)}" if args.server_quirks else ""
        print(f"replay: {len(replayed)} of your requests sent to the reference ({args.reference}) and to the "
              f"candidate ({data['target']}{quirks}); "
              f"{len(differing)} answered with a different structure")
        for r in differing:
            print(f"  {r.where}: " + "; ".join(f"{d.field} {d.reference!r} vs {d.candidate!r}" for d in r.differences))
    if traffic.skipped:
        print(f"{len(traffic.skipped)} entries of {args.requests} were skipped (listed above and in the report)")
    print(f"report: {out / 'migration.html'} ({out / 'migration.md'}, {out / 'migration.json'})")
    return {GO: EXIT_OK, NO_GO: EXIT_DEVIATIONS}.get(decision, EXIT_INCOMPLETE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
