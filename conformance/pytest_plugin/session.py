"""The conformance session: what the plugin does once a session is aimed at a target.

`conformance.pytest_plugin` (the pytest11 entry point) registers this module only when asked
(`--target`, `--base-url`, `--report-dir`, or collecting the suites, whose conftest activates it).
It wires the target, the embedded server and the harness (`conformance.wire.client`) into pytest
and turns each check's ending into an outcome record; the records and the reports are built by
`conformance.report`.  Its state lives on `config.stash`, never in the module.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..config.targets import Target, TargetError, load_target
from ..harness.checks import (BudgetReached, CheckMeta, Deviation, Dimensions, Inconclusive, inconclusive, outcome_of,
                              selected)
from ..config.shards import Shard, instance_identity
from ..options import given
from ..vocabulary import CallPath, Outcome
from ..wire.hazards import NotSent
from ..report.allure import (attach_record, category_of, tag_failure, target_identity, with_compiled_json_writer,
                             without_fixture_containers)
from ..report.results import ResultWriter, record_for, variant_of

if TYPE_CHECKING:  # pragma: no cover
    from ..wire.client import Api, Runtime

STATE = pytest.StashKey["RunState"]()


@dataclasses.dataclass
class RunState:
    """What one pytest process knows about the run; lives on config.stash, never in a module."""

    target: Target
    run_dir: Path
    run_id: str = ""  # unique per run, even when the report directory is reused
    quirks: tuple[str, ...] = ()
    faults: object | None = None  # conformance.server.faults.Faults
    request_log: str | None = None
    latency: float = 0.0  # seconds the embedded server adds per request (its time to the first token)
    token_latency: float = 0.0  # seconds the embedded server adds per generated token
    serial: bool = False  # the embedded server answers one request at a time
    base_url: str | None = None
    api_key: str | None = None
    server: object | None = None  # conformance.server.connect.Endpoint
    writer: ResultWriter | None = None
    started: float = dataclasses.field(default_factory=time.time)
    tokens_used: int = 0  # by this process's checks, from the target's usage counts
    history_path: Path | None = None  # None: neither read nor append the run history
    known: dict | None = None  # the target's expectations (known deviations), when compared
    expectations_path: Path | None = None
    end: object | None = None  # conformance.report.finish.RunEnd, for the terminal summary
    shard: Shard | None = None  # --shard: only this shard's instances run
    sigterm: object | None = None  # the SIGTERM handler before the run's (restored at its end)


def new_run_id(target: Target) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{target.name}-{secrets.token_hex(3)}"


def shard_of_run(config: pytest.Config) -> Shard | None:
    text = config.getoption("conformance_shard")
    if text is None:
        return None
    try:
        shard = Shard.parse(text)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return shard if shard.count > 1 else None  # 1/1 is the whole run


def sharded_run_id(run_id: str, shard: Shard | None) -> str:
    """A shard's run id: the run's, with the shard (`...-shard2of3`); the combined run takes the run's."""
    return shard.run_id(run_id) if shard is not None else run_id


def target_of(config: pytest.Config) -> Target:
    return load_target(config.getoption("conformance_target"), base_url=config.getoption("conformance_base_url"),
                       api_key_env=config.getoption("conformance_api_key_env"),
                       models=config.getoption("conformance_models"))


def run_dir_for(target: Target, run_id: str | None = None) -> Path:
    return Path("reports") / (run_id or new_run_id(target))


def configure(config: pytest.Config) -> None:
    """Set the run up: called once per process by `conformance.pytest_plugin.activate`, after
    allure-pytest has configured itself."""
    config.addinivalue_line("markers", "conformance_check(meta): a conformance check (set by @check)")
    workerinput = getattr(config, "workerinput", None)
    shard = shard_of_run(config)
    try:
        target = target_of(config)
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    quirks = tuple(config.getoption("conformance_server_quirks"))
    if quirks:
        from ..server.quirks import check_names

        if not target.embedded:
            raise pytest.UsageError("--server-quirk applies to the embedded reference server only")
        try:
            check_names(quirks)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    if workerinput is not None and "conformance_run_dir" in workerinput:
        # Quirks and faults too: a worker's results name them (target_identity), though only the
        # controller starts the server.
        state = RunState(target=target, run_dir=Path(workerinput["conformance_run_dir"]),
                         run_id=workerinput.get("conformance_run_id", ""), quirks=quirks,
                         faults=_faults(config, target), base_url=workerinput["conformance_base_url"],
                         api_key=workerinput["conformance_api_key"])
    else:
        # The id is the run's own, not its folder's: a nightly job reuses one folder every night.
        run_id = sharded_run_id(config.getoption("conformance_run_id") or new_run_id(target), shard)
        run_dir = Path(config.getoption("conformance_report_dir") or run_dir_for(target, run_id))
        for stale in ("results", "evidence", "shared", "not-run"):  # a reused report directory starts clean
            if (run_dir / stale).is_dir():
                shutil.rmtree(run_dir / stale)
        state = RunState(target=target, run_dir=run_dir, run_id=run_id, quirks=quirks,
                         faults=_faults(config, target),
                         request_log=config.getoption("conformance_server_request_log"),
                         latency=config.getoption("conformance_server_latency_ms") / 1000,
                         token_latency=config.getoption("conformance_server_token_latency_ms") / 1000,
                         serial=config.getoption("conformance_server_serial"))
    state.shard = shard
    config.stash[STATE] = state
    if workerinput is None:
        _settle_run_end(config, state)
        _stop_on_sigterm(state)
    without_fixture_containers(config.pluginmanager)  # after allure-pytest registered them (trylast)
    with_compiled_json_writer()
    _run_suites_when_targeted(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "conformance-xdist")


def _stop_on_sigterm(state: RunState) -> None:
    """A run stopped by a termination signal (a CI job's time limit, `timeout`, a scheduler) ends as
    one stopped by Ctrl-C: pytest's session ends, interrupted, and what was judged is written as a
    partial run. Only where nothing else handles the signal, and only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        state.sigterm = signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_unconfigure(config: pytest.Config) -> None:
    state: RunState | None = config.stash.get(STATE, None)
    if state is not None and state.sigterm is not None:
        signal.signal(signal.SIGTERM, state.sigterm)
        state.sigterm = None


def _settle_run_end(config: pytest.Config, state: RunState) -> None:
    """Where the run's history line goes and which expectations it is compared with (the controller's)."""
    from ..config import expectations

    if not config.getoption("conformance_no_history"):
        chosen = config.getoption("conformance_history")
        state.history_path = Path(chosen) if chosen else state.run_dir.parent / "history.jsonl"
    if state.shard is not None:
        # An expectation is a check's worst outcome over all its instances, which a shard may hold
        # only some of: the shards are compared once combined (`conformance report --combine-shards`).
        return
    path = expectations.chosen_path(config.getoption("conformance_expectations"),
                                    config.getoption("conformance_no_expectations"), state.target.name)
    if path is not None:
        try:
            state.known, state.expectations_path = expectations.load(path), path
        except expectations.ExpectationsError as exc:
            raise pytest.UsageError(str(exc)) from None


def aim_allure_dir(config: pytest.Config) -> None:
    """A run aimed at a target (`pytest suites --target X`) is the same job as `conformance run`: it
    writes its Allure results into the run's folder too, unless --alluredir says otherwise. Before
    allure-pytest reads the option; xdist workers inherit the controller's options."""
    if hasattr(config, "workerinput") or not hasattr(config.option, "allure_report_dir") or \
            config.option.allure_report_dir:
        return
    report_dir = config.getoption("conformance_report_dir")
    if not report_dir:
        try:
            target = target_of(config)
        except TargetError:
            return  # configure() says why, once
        try:
            shard = shard_of_run(config)
        except pytest.UsageError:
            return  # configure() says why, once
        config.option.conformance_run_id = sharded_run_id(config.getoption("conformance_run_id") or new_run_id(target),
                                                          shard)
        report_dir = config.option.conformance_report_dir = str(run_dir_for(target, config.option.conformance_run_id))
    config.option.allure_report_dir = str(Path(report_dir) / "allure-results")
    config.option.clean_alluredir = True


def _faults(config: pytest.Config, target: Target):
    spec = config.getoption("conformance_server_faults")
    if not spec:
        return None
    from ..server.faults import FaultSpecError, parse_faults

    if not target.embedded:
        raise pytest.UsageError("--server-faults applies to the embedded reference server only")
    try:
        # A stall lasts longer than the client waits for a read, so the client sees it as one.
        return parse_faults(spec, config.getoption("conformance_server_fault_seed"), target.limits.timeout_seconds + 1)
    except FaultSpecError as exc:
        raise pytest.UsageError(str(exc)) from None


def _run_suites_when_targeted(config: pytest.Config) -> None:
    """`pytest --target NAME` with no paths runs the checks, wherever pytest is started."""
    if given(config.invocation_params.args, ("--target",)) and config.args_source != pytest.Config.ArgsSource.ARGS:
        import conformance.suites

        config.args = [list(conformance.suites.__path__)[0]]


def _ensure_endpoint(state: RunState, own_process: bool = False) -> None:
    """Resolve the base URL and key; start the embedded server once for the whole run."""
    if state.base_url is not None:
        return
    # Imported here: an xdist worker is given the base URL and never starts a server (46 ms of each
    # worker's start-up, which all eight of `-n 8` spend before the first check).
    from ..server.connect import connect

    endpoint = connect(state.target, quirks=state.quirks, faults=state.faults, request_log=state.request_log,
                       latency=state.latency, own_process=own_process, token_latency=state.token_latency,
                       serial=state.serial)
    state.server, state.base_url, state.api_key = endpoint, endpoint.base_url, endpoint.api_key


class _XdistHooks:
    """Controller side of pytest-xdist: one server and one run directory for every worker."""

    @pytest.hookimpl
    def pytest_configure_node(self, node) -> None:
        state: RunState = node.config.stash[STATE]
        try:
            # Not in this process: the controller's report handling would hold the server up.
            _ensure_endpoint(state, own_process=True)
        except RuntimeError as exc:
            pytest.exit(f"conformance: {exc}", returncode=3)
        node.workerinput["conformance_run_dir"] = str(state.run_dir)
        node.workerinput["conformance_run_id"] = state.run_id
        node.workerinput["conformance_base_url"] = state.base_url
        node.workerinput["conformance_api_key"] = state.api_key


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    meta: CheckMeta | None = getattr(metafunc.function, "conformance_check", None)
    if meta is None:
        return
    target: Target = metafunc.config.stash[STATE].target
    if meta.variants is not None:
        cases = [(e, vid, value) for e in meta.endpoints for vid, value in meta.variants(e)]
        if meta.is_template:
            metafunc.parametrize(("endpoint", "case"), [(e, v) for e, _, v in cases],
                                 ids=[f"{e}-{vid}" for e, vid, _ in cases])
        else:
            metafunc.parametrize("case", [v for _, _, v in cases], ids=[vid for _, vid, _ in cases])
    elif meta.is_template:
        metafunc.parametrize("endpoint", list(meta.endpoints))
    if "conformance_api" in metafunc.fixturenames:
        # Raw HTTP first: it reads a stream to its end, so the SDK instance after it can be answered
        # from the same answer (wire/reuse.py); the SDK stops reading at `data: [DONE]`.
        paths = sorted(meta.paths, key=lambda p: p != CallPath.HTTP)
        instances = [Dimensions(model, mode, path)
                     for model in target.models for mode in meta.modes for path in paths]
        metafunc.parametrize("conformance_api", instances, indirect=True, ids=[d.id for d in instances])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the instances `--check` leaves out, and those of other shards (`--shard`)."""
    patterns = config.getoption("conformance_checks")
    shard: Shard | None = config.stash[STATE].shard
    if not patterns and shard is None:
        return
    keep, drop = [], []
    for item in items:
        meta: CheckMeta | None = getattr(getattr(item, "function", None), "conformance_check", None)
        if meta is None:
            keep.append(item)
            continue
        callspec = getattr(item, "callspec", None)
        endpoint = callspec.params.get("endpoint", meta.endpoints[0]) if callspec else meta.endpoints[0]
        check_id, variant = meta.resolve(endpoint).id, variant_of(callspec)
        chosen = not patterns or selected(patterns, check_id, endpoint, variant)
        if chosen and shard is not None:
            chosen = shard.holds(_identity(item, check_id, variant))
        (keep if chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    """What start-up and collection built (modules, the catalogue, every item) lives to the end of
    the session: it is set aside from the cyclic garbage collector (gc.freeze), whose full passes
    would otherwise walk all of it again every few hundred instances. Garbage first collected."""
    gc.collect()
    gc.freeze()


def _identity(item: pytest.Item, check_id: str, variant: str | None) -> str:
    """The instance's identity for sharding: its record's check, variant and dimensions (the nodeid
    would move with the rootdir, the file a check lives in and pytest's id formatting)."""
    dims = getattr(item, "callspec", None) and item.callspec.params.get("conformance_api")
    if not isinstance(dims, Dimensions):
        return instance_identity(check_id, variant, "", "", item.nodeid)
    return instance_identity(check_id, variant, dims.model, dims.mode, dims.path)


def _worker_count(config: pytest.Config) -> int:
    """How many processes share the run (pytest-xdist workers; 1 without xdist)."""
    return int(getattr(config, "workerinput", {}).get("workercount", 1))


@pytest.fixture(scope="session")
def conformance_runtime(pytestconfig: pytest.Config):
    """The per-process connection to the target (shared clients, caches)."""
    # Imported here: the openai SDK takes 0.6 s to import, and an xdist controller never needs it.
    from ..wire.client import Runtime

    state: RunState = pytestconfig.stash[STATE]
    try:
        _ensure_endpoint(state)
    except TargetError as exc:
        pytest.exit(str(exc), returncode=2)
    runtime = Runtime(state.target, state.base_url, state.api_key, share=_worker_count(pytestconfig),
                      shared_dir=state.run_dir / "shared", reuse=not pytestconfig.getoption("conformance_no_reuse"),
                      recovers=_may_serve_one_at_a_time(state),
                      # What the target serves at once is not stated: the run's own requests may be what a
                      # check saw, so a failure is confirmed alone (wire/alone.py).
                      confirms_alone=_worker_count(pytestconfig) > 1 and "concurrency" not in state.target.limits_given)
    yield runtime
    runtime.close()


def _may_serve_one_at_a_time(state: RunState) -> bool:
    """Whether a request the suite gave up on may hold the target up for every other: any live target
    (what it serves at once is measured or declared, never known), and the embedded server when it serves
    one at a time. There a timeout is followed by a wait until the target answers again (client.py)."""
    if not state.target.embedded:
        return True
    if state.serial:
        return True
    if not state.quirks:
        return False
    from ..server.quirks import Layer

    return Layer(state.quirks).behaviour.one_generation_at_a_time


_API = pytest.StashKey["Api"]()


@pytest.fixture
def conformance_api(request: pytest.FixtureRequest, conformance_runtime: Runtime) -> Api:
    """The harness for one check instance, bound to its model, mode and path (the suites call it `api`)."""
    dims: Dimensions = request.param
    config = request.config
    budget = config.getoption("conformance_budget_tokens")
    if budget is not None:
        share = budget / _worker_count(config)
        if config.stash[STATE].tokens_used >= share:
            raise BudgetReached(f"the token budget ({budget}) is spent")
    from ..wire.client import Api

    meta: CheckMeta = request.node.function.conformance_check
    callspec = getattr(request.node, "callspec", None)
    check_id = meta.resolve(callspec.params.get("endpoint", meta.endpoints[0]) if callspec else meta.endpoints[0]).id
    wedged_in = conformance_runtime.hazards.wedged_in(check_id)
    if wedged_in is not None:
        # Sent again, by another path, in another mode or for another model, it would wedge the target again.
        inconclusive(f"not sent: this check's request wedged the target in {wedged_in} (its evidence shows how); "
                     "sent again it would wedge it again")
    harness = Api(conformance_runtime, model=dims.model, mode=dims.mode, path=dims.path, check_id=check_id,
                  instance=request.node.nodeid)
    request.node.stash[_API] = harness
    return harness


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A failure seen while other requests of the run were in flight, on a target whose concurrency is
    uncertain, is the instance run again alone (wire/alone.py): its outcome is what it shows alone."""
    try:
        return (yield)
    except NotSent as refused:  # a request the run learned not to send again (wire/hazards.py)
        raise Inconclusive(str(refused)) from None
    except (Deviation, Inconclusive) as seen:  # not a wedge: the target was busy with this very request
        harness = item.stash.get(_API, None)
        if harness is None or not harness.runtime.gate.active:
            raise
        beside = {"outcome": outcome_of(_Raised(seen))[0], "message": str(seen).splitlines()[0]}
        harness.restart()
        with harness.runtime.gate.alone(), harness.runtime.isolated():
            try:
                item.runtest()
            except BaseException as alone:
                harness.confirmed_alone = {"beside_others": beside, "alone": outcome_of(_Raised(alone))[0]}
                raise
        harness.confirmed_alone = {"beside_others": beside, "alone": "pass"}
        return None


@dataclasses.dataclass(frozen=True)
class _Raised:
    """An exception as outcome_of reads it (a pytest ExceptionInfo's `value`)."""

    value: BaseException


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    meta: CheckMeta | None = getattr(getattr(item, "function", None), "conformance_check", None)
    outcome_verdict = None
    if meta is not None and (call.when == "call" or (call.when == "setup" and call.excinfo is not None)):
        # Before the report is made: Allure's own hook reads the failure message after this one.
        outcome_verdict = _record(item, meta, call)
        # The harness holds every request and response of the instance: recorded now, so let it
        # go (pytest keeps every item, and its stash, to the end of the session).
        if _API in item.stash:
            del item.stash[_API]
    outcome = yield
    if outcome_verdict is not None:
        outcome.get_result().user_properties.append(("conformance_outcome", str(outcome_verdict)))  # plain: xdist sends it


def _record(item: pytest.Item, meta: CheckMeta, call: pytest.CallInfo) -> str:
    """Write the instance's record and evidence, and hand it to Allure; returns the outcome."""
    state: RunState = item.config.stash[STATE]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if call.excinfo is not None and isinstance(call.excinfo.value, BudgetReached):
        (state.run_dir / "not-run").mkdir(parents=True, exist_ok=True)
        with open(state.run_dir / "not-run" / f"{worker}.txt", "a", encoding="utf-8") as f:
            f.write(item.nodeid + "\n")
        return "not run"
    if state.writer is None:
        state.writer = ResultWriter(state.run_dir, worker)
    verdict, message = outcome_of(call.excinfo)
    callspec = getattr(item, "callspec", None)
    resolved = meta.resolve(callspec.params.get("endpoint", meta.endpoints[0]) if callspec else meta.endpoints[0])
    harness = item.stash.get(_API, None)
    runtime = harness.runtime if harness else None
    record = record_for(item, resolved, state.target, verdict, message, harness,
                        runtime.redactor if runtime else None, call.duration,
                        requests=item.config.getoption("conformance_record_requests"))
    record["category"] = category_of(record)
    if verdict == Outcome.FAIL:  # the difference in words, when the check named it (report/causes.py)
        record["finding"] = getattr(call.excinfo.value, "finding", None)
    state.tokens_used += record["tokens"]["prompt"] + record["tokens"]["completion"]
    evidence_path = state.writer.write(record)
    record["evidence_file"] = str(evidence_path)
    attach_record(record, target_identity(state.target.name, state.quirks, state.faults))
    if record["category"] and call.excinfo is not None:
        tag_failure(call.excinfo.value, record["category"])
    return verdict


def _configuration(config: pytest.Config, state: RunState) -> dict:
    """What the run was, beyond its target: its id and what makes it comparable with another run."""
    faults = state.faults
    return {"id": state.run_id or state.run_dir.name,
            "selection": {"checks": list(config.getoption("conformance_checks")),
                          "keyword": config.getoption("keyword") or None,
                          "markers": config.getoption("markexpr") or None},
            "quirks": sorted(state.quirks),
            "faults": {"rates": dict(faults.rates), "seed": faults.seed} if faults is not None else None,
            **({"shard": str(state.shard)} if state.shard is not None else {})}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state: RunState | None = config.stash.get(STATE, None)
    if state is None:
        return
    if state.writer is not None:
        state.writer.close()
    if getattr(config, "workerinput", None) is not None:
        return
    if state.server is not None:
        state.server.close()
        state.server = None
    shutil.rmtree(state.run_dir / "shared", ignore_errors=True)  # shared replies are in the evidence already
    if state.faults is not None:
        import json

        state.run_dir.mkdir(parents=True, exist_ok=True)
        (state.run_dir / "faults.json").write_text(json.dumps({"rates": state.faults.rates,
                                                               "seed": state.faults.seed,
                                                               "injected": state.faults.injected}, indent=2))
    results_dir = state.run_dir / "results"
    if results_dir.is_dir() or state.shard is not None:  # a shard may hold none of a narrow selection
        from ..report.finish import finish_run

        configuration = _configuration(config, state)
        if exitstatus == pytest.ExitCode.INTERRUPTED:  # Ctrl-C, a termination signal, a CI limit
            configuration["partial"] = {"reason": "stopped before its end (Ctrl-C or a termination signal)",
                                        "collected": session.testscollected}
        state.end = finish_run(state.run_dir, state.target, state.base_url or "", state.started,
                               configuration, state.history_path, state.known,
                               state.expectations_path, getattr(config.option, "allure_report_dir", None))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The run's summary, the same for `conformance run` and `pytest suites --target X`."""
    state: RunState | None = config.stash.get(STATE, None)
    if state is None or state.end is None:
        return
    from ..report.finish import terminal_lines

    for note in state.end.notes:  # what went wrong around the run, not in it: stderr, as every usage note
        print(note, file=sys.stderr)
    for line in terminal_lines(state.end, time.time() - state.started):
        terminalreporter.write_line(line)
