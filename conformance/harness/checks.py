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
import json
import re
from typing import Any, Callable, NamedTuple

import pytest

from ..config.catalogue import load_catalogue
from ..vocabulary import LEVELS, MODES, PATHS
from ..wire.transport import InfrastructureError

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_][a-z0-9_-]*)+$")


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


class _Absent:
    """A key the response does not have (`describe(d.get(key, ABSENT))` says 'absent', not 'null')."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = _Absent()
ROOM = 80  # characters of a value shown in a message, so that what follows it stays in view


def describe(value: Any, room: int = ROOM, article: bool = False) -> str:
    """What came back, typed: `string ' ask'`, `null`, `number 3`, `true`, `object {"role": "user"}`
    (`object with keys [...]` when longer), `array []`, `array of 7 [...]`, `absent`.

    Strings are quoted as repr quotes them, so leading and trailing spaces show; long values are
    cut with their length. `article=True` reads in a sentence: `a string 'x'`, `an object ...`."""
    if isinstance(value, _Absent):
        return "absent"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        kind, shown = "number", repr(value)
    elif isinstance(value, str):
        kind = "string"
        shown = repr(value) if len(value) <= room else f"{value[:max(room - 20, 8)]!r}... ({len(value)} characters)"
    elif isinstance(value, dict):
        kind, shown = "object", _json(value)
        if len(shown) > room:
            keys = ", ".join(repr(str(k)) for k in list(value)[:8]) + (", ..." if len(value) > 8 else "")
            kind, shown = "object with keys", f"[{keys}]"
    elif isinstance(value, (list, tuple)):
        kind, shown = "array", _json(value)
        if len(shown) > room:
            kind, shown = f"array of {len(value)}", shown[:room - 10] + "...]"
    else:
        kind, shown = type(value).__name__, repr(value)[:room]
    text = f"{kind} {shown}"
    if article:
        text = ("an " if kind[0] in "aeiou" else "a ") + text
    return text


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def expect(condition: Any, expected: str, actual: Any, why: str | None = None) -> None:
    """Fail with 'expected X; got Y' (and ', WHY' when given) unless the condition holds.

    A string `actual` is the suite's own phrase for what came back and is shown as it is (unless
    it holds characters a reader could not see); any other value (null, a number, an object, a
    list) is shown typed, by `describe`. A string that came back from the target is passed through
    `describe` by the check, so that it reads `string 'stop'`, never a bare stop."""
    if not condition:
        if isinstance(actual, str):
            shown = actual if actual.isprintable() else repr(actual)
        else:
            shown = describe(actual)
        if len(shown) > 400:
            shown = shown[:400] + "..."
        raise Deviation(f"expected {expected}; got {shown}" + (f", {why}" if why else ""))


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

