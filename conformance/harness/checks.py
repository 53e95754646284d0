"""How a check is declared and how it reports: the `@check` decorator and the outcomes.

A check states one clause of OpenAI's behaviour.  Its metadata sits on the function, as test262
puts frontmatter on a test.  The full frontmatter:

    @check(id="{endpoint}.stop.excluded-from-output",  # stable id, dotted; {endpoint}: a template
           level=Level.MUST,                            # MUST, SHOULD or MAY (conformance.vocabulary.Level)
           feature="{endpoint}.stop",                   # one of the closed list of features (below)
           parameter="stop",                            # the request parameter whose verdict it informs;
                                                        #   the clause is then the parameter's reference
           clause=None,                                 # else a link, or a key of the catalogue's [references]
           since="0.1.0",                               # the suite version the check appeared in
           info="Up to 4 sequences where the API will stop generating further tokens. The "
                "returned text will not contain the stop sequence.",
           endpoints=None, modes=MODES, paths=PATHS, variants=None)  # modes=(Mode.REGULAR,), ...
    def test_stop_excluded(api, endpoint):
        '''With stop=[s], s well inside the output, the output is the greedy output up to the
        first s, without s.

        Further paragraphs explain the oracle; only the first is the statement.'''

- statement: the docstring's first paragraph, its lines joined into one; it ends with a period.
- info: OpenAI's own words for the clause.  A string (or a tuple of strings) is quoted verbatim
  from OpenAI's OpenAPI document (a parameter's or field's description, an enum); the project's
  tests check each quote against the document.  `docs("...")` quotes the OpenAI docs page the
  clause links to instead.  Where OpenAI says nothing (an extension parameter, a clause the
  suite derives itself), `not_in_openai("where the clause comes from")` says so, never an
  invented quote.  A template may give a mapping {endpoint: info}.
- since: the suite version (pyproject's) in which the check appeared, "MAJOR.MINOR.PATCH"; it
  never changes afterwards.
- feature: a closed list, declared once as data in conformance/config/data/parameters.toml: every
  `<endpoint>.<parameter>` of its [[parameter]] entries, and the [features] table for the rest
  (`chat.errors`, `auth.key`, ...).  An unknown feature is refused at import time.

suites/MANIFEST.md lists every concrete check with its metadata and where it is declared
(`conformance manifest --write`).

Outcomes (INTERPRETING.md defines them): returning normally is `pass`; `expect(...)` failing
raises `Deviation` (`fail`); `unsupported(...)` and `inconclusive(...)` raise their own
exceptions; `InfrastructureError` from the harness is `error`.

A check that asserts several independent clauses judges them inside `with clauses() as soft:`:
`soft.expect(...)` records a failed clause and goes on, `with soft.clause(): helper(...)` does
the same for a helper that calls `expect`, and the block fails once, at its end, with every
failed clause: the first one's message is the first line, each further one a line
`also: ...`.  Dependent steps (a field must exist before it is read) stay hard `expect`s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fnmatch
import inspect
import json
import re
from typing import Any, Callable, Mapping, NamedTuple, Union

import pytest

from ..config.catalogue import load_catalogue
from ..vocabulary import LEVELS, MODES, PATHS, Outcome, variant_subject
from ..wire.hazards import NotSent
from ..wire.transport import InfrastructureError, TargetWedged

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_][a-z0-9_-]*)+$")
SINCE_PATTERN = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
INFO_SOURCES = ("openapi", "docs", "none")


@dataclasses.dataclass(frozen=True)
class Info:
    """What OpenAI says about a check's clause, and where it says it.

    source "openapi": `quotes` are verbatim from OpenAI's OpenAPI document (tests verify them);
    "docs": verbatim from the OpenAI docs page the clause links to; "none": OpenAI says nothing
    about it, and `note` says where the clause comes from instead."""

    source: str
    quotes: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.source not in INFO_SOURCES:
            raise ValueError(f"info source must be one of {INFO_SOURCES}, not {self.source!r}")
        if self.source == "none":
            if self.quotes:
                raise ValueError("info that OpenAI does not give has no quotes, only a note")
        elif not self.quotes or not all(isinstance(q, str) and q.strip() for q in self.quotes):
            raise ValueError("info quotes OpenAI's words: give one non-empty string or more")

    @property
    def text(self) -> str:
        """One line: the quotes, each in double quotes, or the marker and the note."""
        if self.source == "none":
            return NOT_IN_OPENAI_TEXT + (f": {self.note}" if self.note else "")
        return " … ".join(f"\u201c{' '.join(q.split())}\u201d" for q in self.quotes)


NOT_IN_OPENAI_TEXT = "not in OpenAI's words"
NOT_IN_OPENAI = Info("none")


def docs(*quotes: str) -> Info:
    """OpenAI's words from the docs page the check's clause links to (not in the OpenAPI document)."""
    return Info("docs", tuple(quotes))


def not_in_openai(note: str) -> Info:
    """OpenAI says nothing about this clause: `note` says where it comes from (an extension, the
    suite's own robustness clause, a tracker)."""
    return Info("none", note=" ".join(note.split()))


InfoSpec = Union[str, tuple, Info, Mapping[str, Union[str, tuple, Info]]]


def _info(value: Any, where: str) -> Info:
    if isinstance(value, Info):
        return value
    if isinstance(value, str):
        return Info("openapi", (value,))
    if isinstance(value, tuple):
        return Info("openapi", tuple(value))
    raise ValueError(f"{where}: info is a quote (a string or tuple of strings), docs(...), not_in_openai(...) "
                     f"or a mapping {{endpoint: one of them}}, not {type(value).__name__}")


class Dimensions(NamedTuple):
    """What one check instance runs on (besides the target)."""

    model: str
    mode: str
    path: str

    @property
    def id(self) -> str:
        return f"{self.model}-{self.mode}-{self.path}"


class Deviation(AssertionError):
    """The target behaved differently from OpenAI: outcome `fail`.

    `finding`, when the check can say it, is the difference in a reader's words, the same
    wherever it is seen ("the stop sequence is left in the output"): the report groups failures
    into causes by it (conformance.report.causes)."""

    def __init__(self, message: str, finding: str | None = None) -> None:
        super().__init__(message)
        self.finding = finding


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
    since: str = ""  # the suite version the check appeared in
    info: Info | tuple[tuple[str, Info], ...] = NOT_IN_OPENAI  # one Info, or (endpoint, Info) per endpoint
    file: str = dataclasses.field(default="", compare=False)  # where the check is declared (absolute path)
    line: int = dataclasses.field(default=0, compare=False)

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
            parameter=self.parameter, extension=self.extension, since=self.since, info=self.info_for(endpoint),
            file=self.file, line=self.line,
        )

    def info_for(self, endpoint: str) -> Info:
        if isinstance(self.info, Info):
            return self.info
        return dict(self.info)[endpoint]

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
    since: str = ""
    info: Info = NOT_IN_OPENAI
    file: str = dataclasses.field(default="", compare=False)
    line: int = dataclasses.field(default=0, compare=False)


def param_clause(endpoint: str, name: str) -> str:
    return load_catalogue().clause(endpoint, name)


def reference(key: str) -> str:
    return load_catalogue().reference(key)


def known_features() -> frozenset[str]:
    """The closed list of feature ids (conformance/config/data/parameters.toml)."""
    return load_catalogue().feature_ids()


def statement_of(doc: str | None) -> str:
    """The docstring's first paragraph, its lines joined into one."""
    paragraph = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def check(*, id: str, level: str, feature: str, since: str | None = None, info: InfoSpec | None = None,
          clause: str | None = None, parameter: str | None = None,
          endpoints: tuple[str, ...] | None = None, modes: tuple[str, ...] = MODES,
          paths: tuple[str, ...] = PATHS,
          variants: Callable[[str], list[tuple[str, Any]]] | None = None) -> Callable:
    """Declare a check; the docstring's first paragraph is its one-line statement.

    With `{endpoint}` in the id the check is a template over `endpoints`: the test function then
    takes an `endpoint` argument and one concrete check exists per endpoint.  `variants(endpoint)`
    lists data-driven cases (e.g. the catalogue's invalid values), passed as the `case` argument.
    `since` and `info` are required (the module docstring shows the whole frontmatter).
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
    if since is None or not isinstance(since, str) or not SINCE_PATTERN.match(since):
        raise ValueError(f"{id}: since= is the suite version the check appeared in, MAJOR.MINOR.PATCH "
                         f"(e.g. \"0.1.0\"), not {since!r}")
    known = known_features()
    for endpoint in endpoints:
        resolved = feature.format(endpoint=endpoint)
        if resolved not in known:
            near = difflib.get_close_matches(resolved, sorted(known), n=1)
            raise ValueError(f"{id}: unknown feature {resolved!r}; features are a closed list in "
                             "conformance/config/data/parameters.toml (an <endpoint>.<parameter> of a [[parameter]], or "
                             "the [features] table)" + (f"; did you mean {near[0]!r}?" if near else ""))
    if info is None:
        raise ValueError(f"{id}: info= gives OpenAI's own words for the clause (a verbatim quote), or "
                         "not_in_openai(...) where OpenAI says nothing")
    if isinstance(info, Mapping):
        if set(info) != set(endpoints):
            raise ValueError(f"{id}: an info mapping has one entry per endpoint {endpoints}, not {sorted(info)}")
        info_value: Info | tuple = tuple((e, _info(info[e], id)) for e in endpoints)
    else:
        info_value = _info(info, id)

    def decorate(func: Callable) -> Callable:
        statement = statement_of(func.__doc__)
        if not statement:
            raise ValueError(f"{id}: the docstring's first paragraph states the check")
        code = getattr(func, "__code__", None)
        meta = CheckMeta(id=id, level=level, feature=feature, clause=clause, statement=statement,
                         endpoints=endpoints, parameter=parameter, extension=extension,
                         modes=tuple(modes), paths=tuple(paths), variants=variants, since=since, info=info_value,
                         file=code.co_filename if code else "", line=code.co_firstlineno if code else 0)
        meta.resolved()  # fail at import time on a clause key that does not exist
        func.conformance_check = meta
        return pytest.mark.conformance_check(meta)(func)

    return decorate


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


def expect(condition: Any, expected: str, actual: Any, why: str | None = None, finding: str | None = None) -> None:
    """Fail with 'expected X; got Y' (and ', WHY' when given) unless the condition holds;
    `finding` names the difference in words, for the report's causes (see `Deviation`).

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
        raise Deviation(f"expected {expected}; got {shown}" + (f", {why}" if why else ""), finding)


# OpenAI's finish_reason values (the chunk schemas' enums in the OpenAPI document).
FINISH_REASONS = {"chat": ("stop", "length", "tool_calls", "content_filter", "function_call"),
                  "completions": ("stop", "length", "content_filter")}
OUTSIDE_FINISH_REASONS = "`choices[].finish_reason` outside OpenAI's values"


def finish_finding(got: Any, why: str) -> str:
    """A wrong finish_reason as a finding: outside OpenAI's values (whatever the value: 'eos_token'
    and 'EOS' are one deviation), or a value of OpenAI's where `why` ("max_tokens ended
    generation") calls for another."""
    if not isinstance(got, str) or got not in FINISH_REASONS["chat"]:  # (chat's are a superset)
        return OUTSIDE_FINISH_REASONS
    return f"finish_reason '{got}' where {why}"


MORE_CLAUSES = 8  # failed clauses listed after the first; the rest are counted


class Clauses:
    """The clauses of one check judged together: each failed one is kept, and the check fails
    once, at the end of the `with clauses()` block, with all of them (`Deviation`).

    The first failed clause's message is the combined message's first line (the report groups
    failures by it); each further one follows on its own line as `also: ...`.  A clause judged
    in a loop (every chunk, every call) gives a `key`, so that it is listed once, at its first
    failure, however many items fail it."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.finding: str | None = None  # the first failed clause's (the report groups by it)
        self._keys: set[str] = set()

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def expect(self, condition: Any, expected: str, actual: Any, why: str | None = None,
               key: str | None = None, finding: str | None = None) -> bool:
        """`expect`, soft: a failure is recorded and the check goes on. Returns whether it held."""
        with self.clause(key):
            expect(condition, expected, actual, why, finding)
        return bool(condition)

    @contextlib.contextmanager
    def clause(self, key: str | None = None):
        """One clause judged by a block (a helper that calls `expect`): its `Deviation` is recorded."""
        try:
            yield
        except Deviation as exc:
            self._record(exc, key)

    def _record(self, failure: Deviation, key: str | None) -> None:
        if key is not None:
            if key in self._keys:
                return
            self._keys.add(key)
        if not self.failures:
            self.finding = failure.finding
        self.failures.append(str(failure))

    def message(self) -> str:
        first, *more = self.failures
        lines = [first, *(f"also: {m}" for m in more[:MORE_CLAUSES])]
        if len(more) > MORE_CLAUSES:
            lines.append(f"also: {len(more) - MORE_CLAUSES} more failed clauses")
        return "\n".join(lines)

    def settle(self) -> None:
        """Fail now with every clause failed so far (nothing happens when none failed)."""
        if self.failures:
            raise Deviation(self.message(), self.finding)


@contextlib.contextmanager
def clauses():
    """Judge several independent clauses of one check and report every failed one (see `Clauses`).

    A hard `expect` failing inside the block ends it: its clause is listed last.  Any other way
    the block ends early (inconclusive, unsupported, an error) after a clause failed is still
    that failure: the check already deviated, as it did when the first `expect` was hard."""
    soft = Clauses()
    try:
        yield soft
    except Deviation as exc:
        if not soft.failed:
            raise
        soft.failures.append(str(exc))
        raise Deviation(soft.message(), soft.finding) from None
    except BaseException as exc:
        if not soft.failed or isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise Deviation(soft.message(), soft.finding) from exc
    soft.settle()


def unsupported(reason: str) -> None:
    raise Unsupported(f"unsupported: {reason}")


def inconclusive(reason: str) -> None:
    raise Inconclusive(f"inconclusive: {reason}")


def outcome_of(excinfo) -> tuple[Outcome, str]:
    """Map how a check ended to (outcome, message)."""
    if excinfo is None:
        return Outcome.PASS, ""
    exc = excinfo.value
    if isinstance(exc, Unsupported):
        return Outcome.UNSUPPORTED, str(exc.msg).removeprefix("unsupported: ")
    if isinstance(exc, Inconclusive):
        return Outcome.INCONCLUSIVE, str(exc.msg).removeprefix("inconclusive: ")
    if isinstance(exc, (Deviation, TargetWedged)):
        return Outcome.FAIL, str(exc)
    if isinstance(exc, InfrastructureError):
        return Outcome.ERROR, str(exc)
    if isinstance(exc, NotSent):
        return Outcome.INCONCLUSIVE, str(exc)
    if isinstance(exc, pytest.skip.Exception):
        return Outcome.INCONCLUSIVE, str(exc.msg)
    return Outcome.ERROR, f"the suite could not judge this ({type(exc).__name__}: {exc})"

