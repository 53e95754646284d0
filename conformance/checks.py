"""How a check is declared and how it reports: the `@check` decorator and the outcomes.

A check states one clause of OpenAI's behaviour.  Its metadata (stable id, clause link, level,
feature, one-line statement) sits on the function, as test262 puts frontmatter on a test:

    @check(id="chat.stop.excluded-from-output", level="MUST", feature="chat.stop",
           clause=param_clause("chat", "stop"))
    def test_stop_excluded(api): ...

Outcomes (INTERPRETING.md defines them): returning normally is `pass`; `expect(...)` failing
raises `Deviation` (`fail`); `unsupported(...)` and `inconclusive(...)` raise their own
exceptions; `InfrastructureError` from the harness is `error`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Any, Callable, NamedTuple

import pytest

from .catalogue import LEVELS, load_catalogue
from .targets import MODES
from .transport import InfrastructureError

PATHS = ("sdk", "http")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_][a-z0-9_-]*)+$")
OUTCOMES = ("pass", "fail", "unsupported", "inconclusive", "error")


class Dimensions(NamedTuple):
    """What one check instance runs on (besides the target)."""

    model: str
    mode: str
    path: str

    @property
    def id(self) -> str:
        return f"{self.model}-{self.mode}-{self.path}"


class Deviation(AssertionError):
    """The target behaved differently from OpenAI: outcome `fail`."""


class Unsupported(pytest.skip.Exception):
    """An optional feature was cleanly refused or declared unsupported: outcome `unsupported`."""


class BudgetReached(pytest.skip.Exception):
    """The run's token budget is spent: the instance is not run, and is listed as such."""


class Inconclusive(pytest.skip.Exception):
    """A precondition of the oracle did not hold: outcome `inconclusive`."""


@dataclasses.dataclass(frozen=True)
class CheckMeta:
    """A check's metadata; `id`, `feature` and `clause` may hold `{endpoint}` (a check template)."""

    id: str
    level: str
    feature: str
    clause: str
    statement: str
    endpoints: tuple[str, ...]
    parameter: str | None = None  # the request parameter whose verdict this check informs
    extension: bool = False
    modes: tuple[str, ...] = MODES
    paths: tuple[str, ...] = PATHS
    # endpoint -> [(variant id, value)]: data-driven variants, passed to the check as `case`
    variants: Callable[[str], list[tuple[str, Any]]] | None = dataclasses.field(default=None, compare=False)

    @property
    def is_template(self) -> bool:
        return "{endpoint}" in self.id

    def resolve(self, endpoint: str) -> "ResolvedCheck":
        if self.clause == "{endpoint}":
            clause = param_clause(endpoint, self.parameter)
        elif self.clause.startswith(("http://", "https://")):
            clause = self.clause.format(endpoint=endpoint)
        else:  # a key of the catalogue's [references] table
            clause = reference(self.clause.format(endpoint=endpoint))
        return ResolvedCheck(
            id=self.id.format(endpoint=endpoint), level=self.level, feature=self.feature.format(endpoint=endpoint),
            clause=clause, statement=self.statement.replace("{endpoint}", endpoint), endpoint=endpoint,
            parameter=self.parameter, extension=self.extension,
        )

    def resolved(self) -> list["ResolvedCheck"]:
        return [self.resolve(e) for e in self.endpoints]


@dataclasses.dataclass(frozen=True)
class ResolvedCheck:
    """One concrete check (a template resolved for one endpoint): a row of the manifest."""

    id: str
    level: str
    feature: str
    clause: str
    statement: str
    endpoint: str
    parameter: str | None
    extension: bool


def param_clause(endpoint: str, name: str) -> str:
    return load_catalogue().clause(endpoint, name)


def reference(key: str) -> str:
    return load_catalogue().reference(key)


def check(*, id: str, level: str, feature: str, clause: str | None = None, parameter: str | None = None,
          endpoints: tuple[str, ...] | None = None, modes: tuple[str, ...] = MODES,
          paths: tuple[str, ...] = PATHS,
          variants: Callable[[str], list[tuple[str, Any]]] | None = None) -> Callable:
    """Declare a check; the first docstring line is its one-line statement.

    With `{endpoint}` in the id the check is a template over `endpoints`: the test function then
    takes an `endpoint` argument and one concrete check exists per endpoint.  `variants(endpoint)`
    lists data-driven cases (e.g. the catalogue's invalid values), passed as the `case` argument.
    """
    if level not in LEVELS:
        raise ValueError(f"{id}: level must be one of {LEVELS}")
    if not ID_PATTERN.match(id.replace("{endpoint}", "endpoint")):
        raise ValueError(f"{id}: ids are dotted lower-case words, e.g. chat.stop.excluded-from-output")
    if "{endpoint}" in id:
        endpoints = tuple(endpoints or ("chat", "completions"))
    else:
        endpoints = tuple(endpoints or (id.split(".", 1)[0],))
        if len(endpoints) != 1:
            raise ValueError(f"{id}: a check that is not a template belongs to exactly one endpoint")
    extension = False
    if parameter is not None:
        extension = load_catalogue().get(parameter).is_extension
        clause = clause or "{endpoint}"  # resolved per endpoint from the catalogue
    if not clause:
        raise ValueError(f"{id}: a check needs the clause it verifies")

    def decorate(func: Callable) -> Callable:
        doc = (func.__doc__ or "").strip().splitlines()
        if not doc:
            raise ValueError(f"{id}: the docstring's first line states the check")
        meta = CheckMeta(id=id, level=level, feature=feature, clause=clause, statement=doc[0].strip(),
                         endpoints=endpoints, parameter=parameter, extension=extension,
                         modes=tuple(modes), paths=tuple(paths), variants=variants)
        meta.resolved()  # fail at import time on a clause key that does not exist
        func.conformance_check = meta
        return pytest.mark.conformance_check(meta)(func)

    return decorate


def variant_subject(variant: str | None, endpoint: str) -> str | None:
    """What a variant is about: 'chat-temperature=2.5' -> 'temperature', 'chat-user' -> 'user'."""
    if variant is None:
        return None
    return variant.removeprefix(f"{endpoint}-").split("=", 1)[0]


def selected(patterns: list[str], check_id: str, endpoint: str, variant: str | None) -> bool:
    """Whether a check instance matches one of the `--check` patterns: a glob on the check id,
    optionally `ID@NAME` to keep only the variants about NAME (chat.errors.invalid-value@n)."""
    for pattern in patterns:
        wanted, _, subject = pattern.partition("@")
        if fnmatch.fnmatchcase(check_id, wanted) and (not subject or variant_subject(variant, endpoint) == subject):
            return True
    return False


def expect(condition: Any, expected: str, actual: Any) -> None:
    """Fail with 'expected X, got Y' unless the condition holds."""
    if not condition:
        # Strings are shown as they are, unless they hold characters a reader could not see.
        shown = actual if isinstance(actual, str) and actual.isprintable() else repr(actual)
        if len(shown) > 400:
            shown = shown[:400] + "..."
        raise Deviation(f"expected {expected}; got {shown}")


def unsupported(reason: str) -> None:
    raise Unsupported(f"unsupported: {reason}")


def inconclusive(reason: str) -> None:
    raise Inconclusive(f"inconclusive: {reason}")


def outcome_of(excinfo) -> tuple[str, str]:
    """Map how a check ended to (outcome, message)."""
    if excinfo is None:
        return "pass", ""
    exc = excinfo.value
    if isinstance(exc, Unsupported):
        return "unsupported", str(exc.msg).removeprefix("unsupported: ")
    if isinstance(exc, Inconclusive):
        return "inconclusive", str(exc.msg).removeprefix("inconclusive: ")
    if isinstance(exc, Deviation):
        return "fail", str(exc)
    if isinstance(exc, InfrastructureError):
        return "error", str(exc)
    if isinstance(exc, pytest.skip.Exception):
        return "inconclusive", str(exc.msg)
    return "error", f"the suite could not judge this ({type(exc).__name__}: {exc})"


def typed(value: Any, room: int = 80) -> str:
    """A value that came back, with its JSON type, for messages: `string 'abc'`, `number 3`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}" if len(value) <= room else f"string {value[:room - 20]!r}... ({len(value)} characters)"
    kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else type(value).__name__
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= room else shown[:room] + '...'}"
