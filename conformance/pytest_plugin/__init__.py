"""The pytest plugin's entry point (pytest11 `conformance`): inert until a session asks for it.

Installed beside a project's own tests, it adds its command-line options and nothing else: no
fixtures, no hooks that act, no target loaded, allure-pytest left alone. A session asks for the suite
by aiming at a target (`--target`, `--base-url` or `--report-dir` on the command line) or by collecting
the suites, whose conftest calls `activate`; then `conformance.pytest_plugin.session` is registered
and does the work (fixtures `conformance_runtime` and `conformance_api`, parametrization, records,
reports). An xdist worker follows its controller: it gets the same arguments.
"""

from __future__ import annotations

import pytest

from .. import options

SESSION_PLUGIN = "conformance-session"

# How the runs the suite starts itself (`conformance run`, the self-test) call pytest. The checks
# judge with expect(), never a bare assert, and nothing in them logs or warns for pytest to
# collect: assertion rewriting (each module, in each worker) and the logging, warnings and
# unraisable/thread-exception plugins (hooks around every phase of every instance, a full garbage
# collection at the end) cost CPU for nothing (benchmarks/bench.py, part h).
LEAN_PYTEST_ARGS = ("--assert=plain", "-p", "no:logging", "-p", "no:warnings", "-p", "no:unraisableexception",
                    "-p", "no:threadexception")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_to_pytest(parser.getgroup("conformance", "OpenAI-compatibility conformance"), options.PLUGIN)


def aimed(config: pytest.Config) -> bool:
    return options.given(config.invocation_params.args, options.AIMING_FLAGS)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    if aimed(config):
        from .session import aim_allure_dir

        aim_allure_dir(config)


@pytest.hookimpl(trylast=True)  # after allure-pytest has registered its listener
def pytest_configure(config: pytest.Config) -> None:
    if aimed(config):
        activate(config)


def activate(config: pytest.Config) -> None:
    """Make this pytest session a conformance run (once; later calls do nothing)."""
    if config.pluginmanager.has_plugin(SESSION_PLUGIN):
        return
    from . import session

    config.pluginmanager.register(session, SESSION_PLUGIN)
    session.configure(config)
