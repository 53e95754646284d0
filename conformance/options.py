"""The options a run takes, declared once for both front ends: `conformance run` (argparse) and
`pytest suites --target X` (the pytest plugin).

Each option is one `Option`: its flag, its name (`args.<name>` on the command line, the pytest option
`conformance_<name>`), and argparse's keywords, which pytest's `addoption` takes as they are.
`conformance run` passes the ones it was given on to pytest with `as_pytest_args`.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Option:
    flag: str
    name: str
    help: str
    keywords: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def pytest_dest(self) -> str:
        return f"conformance_{self.name}"  # pytest's option namespace is shared by every plugin


# Which target, and which of its models.
TARGET = (
    Option("--target", "target", "target name (a file in targets/) or a path to a target TOML file (default: reference)",
           {"default": "reference"}),
    Option("--base-url", "base_url", "override the target's base URL, e.g. http://localhost:8000/v1"),
    Option("--api-key-env", "api_key_env", "name of the environment variable that holds the API key"),
    Option("--model", "models", "model id to test; repeat for several (replaces the target's list)",
           {"action": "append", "metavar": "ID"}),
)

# What a run does with its results: where they go, what they are compared with, what is run.
RUN = (
    Option("--report-dir", "report_dir", "where to write the run (default: reports/<run id>)"),
    Option("--check", "checks", "only checks whose id matches this glob (repeatable), e.g. 'chat.stop.*'; "
                                "ID@NAME keeps only a check's variants about NAME, e.g. chat.errors.invalid-value@temperature",
           {"action": "append", "default": [], "metavar": "PATTERN"}),
    Option("--shard", "shard", "run only shard I of N of the check instances (1 <= I <= N), e.g. 2/3: the N shards, "
                               "run anywhere, are disjoint and together the full run; `conformance report "
                               "--combine-shards` makes them one run", {"metavar": "I/N"}),
    Option("--budget-tokens", "budget_tokens", "stop starting checks once the target reports N tokens used "
                                               "(shared among workers); the rest is listed as not run",
           {"type": int, "metavar": "N"}),
    Option("--history", "history", "the run history to compare with and append to "
                                   "(default: history.jsonl beside the report directory)", {"metavar": "FILE"}),
    Option("--no-history", "no_history", "neither read nor append the run history", {"action": "store_true"}),
    Option("--expectations", "expectations", "known deviations to compare with "
                                             "(default: expectations/<target>.toml when it exists)",
           {"metavar": "FILE"}),
    Option("--no-expectations", "no_expectations", "ignore any expectations file", {"action": "store_true"}),
    Option("--no-reuse", "no_reuse", "send every completion request a check makes, even one another check already "
                                     "sent identically (by default that answer is judged again: fewer requests, "
                                     "the same verdicts)", {"action": "store_true"}),
)

QUIRK = Option("--server-quirk", "server_quirks", "self-test: start the embedded reference server with this quirk "
                                                  "(repeatable; `conformance serve --list-quirks` lists them)",
               {"action": "append", "default": [], "metavar": "NAME"})

FAULTS = (
    Option("--server-faults", "server_faults", "self-test: inject transient faults in the embedded server, e.g. "
                                               "429=0.2,reset=0.05,cut=0.03,stall=0.02", {"metavar": "SPEC"}),
    Option("--server-fault-seed", "server_fault_seed", "seed of the injected faults (default 0)",
           {"type": int, "default": 0}),
)
# What the embedded reference server is made to do: `conformance run` takes these too (a run says so).
EMBEDDED = (QUIRK, *FAULTS)

# The embedded reference server, for the self-test and the benchmark (pytest only: `conformance run`
# passes the rest after `--`).
SERVER = (
    Option("--run-id", "run_id", "the run's id (default: a new one, <UTC time>-<target>-<random hex>)"),
    *EMBEDDED,
    Option("--server-request-log", "server_request_log", "benchmark: the embedded reference server writes every "
                                                         "request it receives to FILE", {"metavar": "FILE"}),
    Option("--server-latency-ms", "server_latency_ms", "the embedded reference server takes MS milliseconds more "
                                                       "per request (its time to the first token)",
           {"type": float, "default": 0.0, "metavar": "MS"}),
    Option("--server-token-latency-ms", "server_token_latency_ms", "the embedded reference server takes MS "
                                                                   "milliseconds per generated token (streams paced)",
           {"type": float, "default": 0.0, "metavar": "MS"}),
    Option("--server-serial", "server_serial", "the embedded reference server answers one request at a time "
                                               "(a serial target)", {"action": "store_true"}),
    Option("--record-requests", "record_requests", "self-test: each result record lists every request its outcome "
                                                   "rests on, as sent (the pruned self-test replays them)",
           {"action": "store_true"}),
)

PLUGIN = TARGET + RUN + SERVER
# Given on the command line, these aim a pytest session at a target: the plugin wakes up.
AIMING_FLAGS = ("--target", "--base-url", "--report-dir")


def add_to_argparse(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    for option in options:
        parser.add_argument(option.flag, dest=option.name, help=option.help, **option.keywords)


def add_to_pytest(group, options: tuple[Option, ...]) -> None:
    for option in options:
        group.addoption(option.flag, dest=option.pytest_dest, help=option.help, **option.keywords)


def as_pytest_args(args: argparse.Namespace, options: tuple[Option, ...]) -> list[str]:
    """The pytest arguments that say what `args` says about `options` (those left at their default are left out)."""
    out: list[str] = []
    for option in options:
        value = getattr(args, option.name, None)
        action = option.keywords.get("action")
        if action == "store_true":
            out += [option.flag] if value else []
        elif action == "append":
            for item in value or []:
                out += [option.flag, str(item)]
        elif value is not None and value != option.keywords.get("default"):
            out += [option.flag, str(value)]
    return out


def given(args: list[str], flags: tuple[str, ...]) -> bool:
    """Whether any of `flags` is among the command-line `args` (as `--flag value` or `--flag=value`)."""
    return any(a == f or a.startswith(f + "=") for a in args for f in flags)
