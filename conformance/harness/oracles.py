"""Shared metamorphic helpers: control requests, cached greedy baselines, acceptance verdicts.

Design rule: before judging a parameter, a control request without it must succeed, so that
"ignored", "rejected" and "broken" can be told apart.  A baseline is the greedy (temperature 0)
output of a prompt: the text two identical requests agree on (a third and more are sent only when
the first two differ, as a GPU's drift makes them); when no two of AGREEMENT_TRIES agree, the
oracles built on it are inconclusive rather than failed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable

from ..config.catalogue import load_catalogue
from .checks import ABSENT, Deviation, describe, expect, inconclusive, unsupported
from ..vocabulary import CallPath, Mode, Verdict
from ..wire.client import Api, Reply
from .schema import envelope_finding, validate_error_envelope
from ..wire.transport import InfrastructureError

# Prompts chosen so that greedy decoding repeats itself on small and large models alike.
REPEATING_PROMPT = "Continue this list, one word per line, and never stop: apple, apple, apple, apple, apple,"
STORY_PROMPT = "Write a long story about a lighthouse keeper who finds a map."
OTHER_PROMPT = "List the planets of the solar system and describe each of them in detail."


def prompt_body(endpoint: str, text: str) -> dict:
    if endpoint == "chat":
        return {"messages": [{"role": "user", "content": text}]}
    if endpoint == "responses":
        return {"input": text}
    return {"prompt": text}


# The least a /responses request may ask for (CreateResponse.max_output_tokens, minimum 16).
MIN_OUTPUT_TOKENS = 16


def limit_body(endpoint: str, tokens: int) -> dict:
    """The length limit of a request: max_tokens, or max_output_tokens (at least its minimum 16)."""
    if endpoint == "responses":
        return {"max_output_tokens": max(MIN_OUTPUT_TOKENS, tokens)}
    return {"max_tokens": tokens}


def is_declared(api: Api, parameter: str) -> bool:
    declared = api.target.declared
    p = load_catalogue().get(parameter)
    return parameter in (declared.extensions if p.is_extension else declared.parameters)


def require_endpoint(api: Api, endpoint: str) -> None:
    """Checks of an endpoint the target does not declare for this model are unsupported."""
    if endpoint not in api.target.endpoints_for(api.model):
        unsupported(f"target '{api.target.name}' does not declare {endpoint} for model {api.model}")


def require_declared_extension(api: Api, parameter: str) -> None:
    if load_catalogue().get(parameter).is_extension and not is_declared(api, parameter):
        unsupported(f"'{parameter}' is not an OpenAI parameter and target '{api.target.name}' does not declare it")


def require_control(api: Api, reply: Reply, what: str = "the control request") -> Reply:
    """A control request (without the parameter under test) must succeed, else nothing can be judged."""
    if not reply.ok:
        inconclusive(f"{what} failed ({reply.describe()}), so the parameter's effect cannot be judged")
    if reply.mode == Mode.STREAM and reply.stream and reply.stream.problems:
        inconclusive(f"{what} returned a malformed stream: {reply.stream.problems[0]}")
    return reply


def require_accepted(api: Api, reply: Reply, endpoint: str, parameter: str | None) -> Reply:
    """The request carrying the parameter must succeed: otherwise record rejected/broken and stop.

    A clean 4xx refusal of an optional or undeclared parameter is `unsupported`; of a parameter
    OpenAI requires every target to honour, or one the target declares, it is a deviation.
    """
    if reply.ok:
        return reply
    status = reply.status
    if status is not None and 400 <= status < 500 and reply.error is not None:
        if parameter is not None:
            api.observe(endpoint, parameter, Verdict.REJECTED, reply.describe())
            p = load_catalogue().get(parameter, endpoint)
            if p.optional and parameter in api.target.unsupported_for(api.model):
                unsupported(f"'{parameter}' was refused ({reply.describe()}); target '{api.target.name}' declares "
                            "that it does not offer it")
            if p.optional and not is_declared(api, parameter):
                unsupported(f"'{parameter}' was refused ({reply.describe()}) and the target does not declare it")
            if p.optional and p.is_extension:
                raise Deviation(f"expected the declared extension '{parameter}' to be accepted; got {reply.describe()}")
            if p.optional:
                raise Deviation(f"expected '{parameter}' to be accepted (the target declares it); got {reply.describe()}")
        raise Deviation(f"expected a successful response; got {reply.describe()}")
    if parameter is not None:
        api.observe(endpoint, parameter, Verdict.BROKEN, reply.describe())
    refused = status is not None and 400 <= status < 500  # a refusal outside OpenAI's envelope
    raise Deviation(f"expected a successful response; got {reply.describe()}",
                    envelope_finding(validate_error_envelope(reply.body, raw_body(reply))) if refused else None)


def send_judged(api: Api, endpoint: str, body: dict, parameter: str | None, companions: tuple[str, ...] = (),
                **kwargs) -> Reply:
    """Send a request carrying `parameter` and require that it was accepted.

    When it was not, the control request (the same body without the parameter, and without the
    `companions` that are only valid with it, e.g. tool_choice with tools) tells whether the
    parameter is to blame: if the control fails too, nothing can be said of the parameter; if the
    parameter alone (without its companions) is accepted, the first companion takes the blame.
    """
    judged = parameter is not None and parameter in body and parameter not in ("model", "messages", "prompt")
    try:
        reply = api.create(endpoint, body, **kwargs)
    except InfrastructureError as failure:
        if not (judged and failure.connection):
            raise
        reply = _blame_connection_failures(api, endpoint, body, parameter, companions, failure, **kwargs)
    if not reply.ok and judged:
        control_body = _control_body(body, parameter, companions)
        control = api.create(endpoint, control_body, **kwargs)
        if not control.ok:
            _blame_prerequisite(api, endpoint, control_body, control, parameter, **kwargs)
            inconclusive(f"the request fails without '{parameter}' too ({control.describe()}), so '{parameter}' "
                         "cannot be judged")
        present = [c for c in companions if c in body]
        if present and api.create(endpoint, {k: v for k, v in body.items() if k not in present}, **kwargs).ok:
            parameter = present[0]  # the parameter alone is accepted: its companion is what is refused
    require_accepted(api, reply, endpoint, parameter)
    if reply.mode == Mode.STREAM and reply.limit_passed is not None:  # the suite stopped reading (wire/watch.py)
        api.observe(endpoint, reply.limit_passed, Verdict.IGNORED, reply.stream.problems[-1])
        raise Deviation(f"expected the streamed answer to end by its {reply.limit_passed}; got "
                        f"{reply.stream.problems[-1].split(': ', 1)[-1]}")
    if reply.mode == Mode.STREAM and reply.stream is not None and reply.stream.problems:
        if parameter is not None:
            api.observe(endpoint, parameter, Verdict.BROKEN, reply.stream.problems[0])
        raise Deviation(f"expected a well-formed event stream; got {reply.stream.problems[0]}")
    return reply


# What a parameter is only meaningful with, the most dependent first: without tools there is no
# tool_choice to judge, and a deployment may refuse tools altogether (vLLM without a tool parser).
PREREQUISITES = {"tool_choice": ("tools",), "parallel_tool_calls": ("tool_choice", "tools"),
                 "function_call": ("functions",)}


def _blame_prerequisite(api: Api, endpoint: str, control_body: dict, control: Reply, parameter: str,
                        **kwargs) -> None:
    """The control failed too: when it still carries what `parameter` depends on (tools for
    tool_choice), and leaving that out succeeds, the refusal is that feature's: judged as such
    (`unsupported` naming it where the target does not offer it, its verdict `rejected`)."""
    refused, bare = control, dict(control_body)
    for prerequisite in (p for p in PREREQUISITES.get(parameter, ()) if p in control_body):
        bare.pop(prerequisite)
        attempt = api.create(endpoint, bare, **kwargs)
        if attempt.ok:
            require_accepted(api, refused, endpoint, prerequisite)
            return
        refused = attempt


def _control_body(body: dict, parameter: str, companions: tuple[str, ...]) -> dict:
    """The request without the parameter under judgement and the companions only valid with it."""
    return {k: v for k, v in body.items() if k != parameter and k not in companions}


def _blame_connection_failures(api: Api, endpoint: str, body: dict, parameter: str, companions: tuple[str, ...],
                               failure: InfrastructureError, rounds: int = 2, **kwargs) -> Reply:
    """The connection failed through a whole retry budget. It is the parameter's fault only if the
    request without it goes through and the request with it fails again, round after round (a
    flaky network does not do that); when a later round gets through, that reply is judged."""
    control = api.create(endpoint, _control_body(body, parameter, companions), **kwargs)
    if not control.ok:
        raise failure
    for _ in range(rounds):
        try:
            return api.create(endpoint, body, **kwargs)  # it went through: the network, not the parameter
        except InfrastructureError as again:
            if not again.connection:
                raise failure from None
    api.observe(endpoint, parameter, Verdict.BROKEN, str(failure))
    raise Deviation(f"expected a response with '{parameter}'; the connection failed in {rounds + 1} rounds of "
                    f"retries ({failure}), while the same request without it succeeded")


def raw_body(reply: Reply) -> bytes | None:
    """The bytes of a reply's body, for quoting one that is not JSON."""
    return reply.exchange.body if reply.exchange is not None else None


def prompt_counts(replies: list[Reply], what: str) -> list[int]:
    """usage.prompt_tokens of each reply, for an oracle that tells whether `what` was read by how
    the count grows. A count that is absent, or 0 for a request that has a prompt, says usage does
    not count the prompt (`{endpoint}.usage.consistent` judges that): nothing to tell `what` by,
    so the check is inconclusive, naming that prerequisite, never "`what` was not read"."""
    key = "input_tokens" if replies and replies[0].endpoint == "responses" else "prompt_tokens"
    counts = [(r.usage or {}).get(key) for r in replies]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts):
        inconclusive(f"usage.{key} {counts}: the target does not count the prompt (usage.consistent "
                     f"judges that), so whether {what} was read cannot be told from it")
    return counts


def expect_envelope(reply: Reply, status: int, refused: str = "an invalid request") -> None:
    """The reply is an error with `status` in OpenAI's envelope (and not an event stream).
    `refused`: what the request was, in words ("an unknown model"), for the finding when it was
    served (report/causes.py)."""
    served_finding = f"{refused} is served, where OpenAI refuses it with HTTP {status}"
    if reply.stream is not None and reply.stream.data:
        expect(False, f"HTTP {status} with a JSON error, not an event stream",
               f"HTTP {reply.status} and an event stream whose first event is {describe(reply.stream.data[0])}",
               finding=served_finding if reply.ok else f"errors sent as an event stream, not HTTP {status}")
    served = reply.status is not None and 200 <= reply.status < 300
    refused_otherwise = reply.status is not None and 400 <= reply.status < 500
    expect(reply.status == status, f"HTTP {status}", reply.describe(),
           "the request was served instead of refused" if served else None,
           finding=served_finding if served else
           f"errors answered HTTP {reply.status} where OpenAI answers {status}" if refused_otherwise else None)
    problems = validate_error_envelope(reply.body, raw_body(reply))
    expect(not problems, "OpenAI's error envelope {error: {message, type, param, code}}", "; ".join(problems),
           finding=envelope_finding(problems))


def expect_refusal_naming(soft, reply: Reply, param: str, expected: str | None = None,
                          refused: str = "an invalid value") -> None:
    """A refusal that names a parameter, its two clauses reported each on its own (in `soft`, a
    `clauses()` block): 400 in OpenAI's envelope, and error.param `param`; what came back instead is
    quoted typed (absent is not null). `refused`: what the request was (`expect_envelope`)."""
    with soft.clause():
        expect_envelope(reply, 400, refused)
    if reply.error is not None:
        named = reply.error.get("param", ABSENT)
        soft.expect(named == param, expected or f"error.param {param!r}", describe(named),
                    finding="refusals do not name the parameter in `error.param`" if named in (None, ABSENT, "")
                    else "refusals name another parameter in `error.param`")


# Legal nondeterminism (INTERPRETING.md, "Repetition"): OpenAI, and every GPU-served engine, is
# not bitwise deterministic at temperature 0, and `seed` is best effort. Identical requests are
# repeated only when the first two disagree, and each clause is judged as it allows: "some try
# reproduces" for best-effort determinism, "every try obeys" for hard limits.
AGREEMENT_TRIES = 5  # identical requests sent at most to find two that agree
RELATION_TRIES = 3  # requests sent at most to find one that keeps a relation with the greedy output
BEGINNING = 8  # characters: drift leaves the beginning of an output alone, sampling does not


@dataclasses.dataclass
class Tries:
    """Identical requests, sent until two agree on their text or the tries run out."""

    replies: list[Reply]

    @property
    def agreed(self) -> Reply | None:
        """The first reply whose text another try repeated."""
        texts = [r.text for r in self.replies]
        return next((r for i, r in enumerate(self.replies) if r.text in texts[i + 1:]), None)

    def describe(self) -> str:
        agreed = self.agreed
        if agreed is None:
            return f"no two of {len(self.replies)} tries agreed"
        return f"{sum(r.text == agreed.text for r in self.replies)} of {len(self.replies)} tries agreed"

    def texts(self, width: int = 40) -> str:
        return ", ".join(repr(r.text[:width]) for r in self.replies)

    @property
    def begin_alike(self) -> bool:
        """Most tries share their first characters: what drift leaves, late in the output, and what
        sampling does not (at temperature 1, five tries begin alike in about 3 runs in 100)."""
        return begins_alike([r.text for r in self.replies])

    @property
    def short(self) -> bool:
        """Every text fits in its beginning: drift, which moves late tokens, has nothing to move."""
        return all(len(r.text) <= BEGINNING for r in self.replies)

    @property
    def all_alike(self) -> bool:
        return len({r.text for r in self.replies}) == 1

    def repeatable(self, whole: bool) -> bool:
        """Greedy decoding repeats as far as these tries show: most begin alike, or, for outputs with no
        late part for drift to move (`whole`), all are the same."""
        return self.all_alike if whole else self.begin_alike


def begins_alike(texts: list[str]) -> bool:
    """More than half of `texts` share their first BEGINNING characters."""
    counts: dict[str, int] = {}
    for text in texts:
        counts[text[:BEGINNING]] = counts.get(text[:BEGINNING], 0) + 1
    return max(counts.values(), default=0) * 2 > len(texts)


def until_agreement(send: Callable[[], Reply], tries: int = AGREEMENT_TRIES) -> Tries:
    """Send twice and, only while no two replies agree (and every one succeeded), again, up to `tries`."""
    result = Tries([send()])
    while len(result.replies) < tries and result.replies[-1].ok and (len(result.replies) < 2 or not result.agreed):
        result.replies.append(send())
    return result


def until_related(send: Callable[[], Reply], related: Callable[[Reply], bool], tries: int = RELATION_TRIES,
                  first: Reply | None = None) -> list[Reply]:
    """Send until one reply keeps the relation with the greedy output (drift can move any single
    reply off it), up to `tries` counting `first` (a reply already in hand); the caller judges hard
    limits on every reply."""
    replies = [first if first is not None else send()]
    while len(replies) < tries and not related(replies[-1]):
        replies.append(send())
    return replies


def greedy_baseline(api: Api, endpoint: str, body: dict, max_tokens: int) -> Reply:
    """The greedy output of `body`: the text two identical temperature-0 requests agree on (up to
    AGREEMENT_TRIES are sent, a third only when the first two differ); one per run, shared by the
    checks and the workers that need it."""
    request = {**body, "temperature": 0, **limit_body(endpoint, max_tokens)}
    key = ("greedy", endpoint, api.model, json.dumps(request, sort_keys=True))
    cache = api.runtime.cache
    if key not in cache:
        def send() -> list:
            tries = until_agreement(lambda: api.create(endpoint, request, mode=Mode.REGULAR, path=CallPath.HTTP))
            return tries.replies

        cache[key] = tuple(api.runtime.shared.get(json.dumps(key), send))
    tries = Tries([r for r in cache[key] if r is not None])
    for index, reply in enumerate(tries.replies):
        api.adopt(reply)
        require_control(api, reply, "the greedy baseline request" if index == 0 else
                        f"greedy baseline request {index + 1} (a repetition)")
    agreed = tries.agreed
    if agreed is None:
        inconclusive(f"greedy decoding (temperature 0) is not repeatable on this target: {tries.describe()} "
                     f"({tries.texts()})")
    return agreed


def greedy_paths(api: Api, endpoint: str, body: dict, max_tokens: int) -> list[str]:
    """Every greedy output seen for `body`, the baseline's first: its tries and RELATION_TRIES more.

    Under drift the baseline's two agreeing tries can both have left the likeliest path at the same
    near tie, so a reply that keeps the relation with another greedy output is as good. Asked for
    only once a relation with the baseline failed; one per run, shared like the baseline."""
    base = greedy_baseline(api, endpoint, body, max_tokens)
    return list(dict.fromkeys([base.text, *(r.text for r in _greedy_tries(api, endpoint, body, max_tokens))]))


def _greedy_tries(api: Api, endpoint: str, body: dict, max_tokens: int, batches: int = 1) -> list[Reply]:
    """Every successful temperature-0 reply sent for `body`: the baseline's tries and `batches` of
    RELATION_TRIES more (each batch sent once per run, shared like the baseline; the baseline must
    have been asked for)."""
    request = {**body, "temperature": 0, **limit_body(endpoint, max_tokens)}
    asked = json.dumps(request, sort_keys=True)
    cache = api.runtime.cache
    seen = list(cache[("greedy", endpoint, api.model, asked)])
    for batch in range(batches):
        key = ("greedy-paths", endpoint, api.model, asked) + ((batch,) if batch else ())
        if key not in cache:
            def send() -> list:
                return [api.create(endpoint, request, mode=Mode.REGULAR, path=CallPath.HTTP)
                        for _ in range(RELATION_TRIES)]

            cache[key] = tuple(api.runtime.shared.get(json.dumps(key), send))
        seen += [api.adopt(r) for r in cache[key] if r is not None]
    return [r for r in seen if r is not None and r.ok]


def until_greedy_related(api: Api, endpoint: str, body: dict, max_tokens: int, send: Callable[[], Reply],
                         related: Callable[[Reply, str], bool], first: Reply | None = None) -> tuple[list[Reply], str]:
    """Send until a reply keeps `related(reply, greedy text)` with the greedy baseline of `body`
    (up to RELATION_TRIES); when none does, with any greedy output `greedy_paths` sees. Returns the
    tries (the last is the one that keeps it, if any does) and the greedy text it is judged against."""
    base = greedy_baseline(api, endpoint, body, max_tokens)
    replies = until_related(send, lambda r: related(r, base.text), first=first)
    if related(replies[-1], base.text):
        return replies, base.text
    for text in greedy_paths(api, endpoint, body, max_tokens)[1:]:
        for reply in replies:
            if related(reply, text):
                return [r for r in replies if r is not reply] + [reply], text
    return replies, base.text


def require_repeatable_greedy(api: Api, endpoint: str, body: dict, max_tokens: int, tries: int) -> None:
    """Inconclusive when greedy decoding of `body` does not repeat on this target, not even its
    beginning (which drift leaves alone): where temperature 0 samples, as it may, `tries` that match
    no greedy output seen show no deviation of the parameter judged. For a check whose tries kept no
    relation with the greedy output (until_greedy_related): after the hard limits every try must keep,
    before that relation is judged.

    An output of one token, or no longer than its beginning, has no late part for drift to move, so
    there the regular tries must all agree, and twice as many are asked for: a peaked first token
    repeats by chance (the reference server's, sampled, is the same in 4 tries in 10)."""
    regular = Tries(_greedy_tries(api, endpoint, body, max_tokens))
    whole = max_tokens == 1 or regular.short
    if whole and regular.all_alike:
        regular = Tries(_greedy_tries(api, endpoint, body, max_tokens, batches=2))
    if not regular.repeatable(whole):
        seen = (f"{len({r.text for r in regular.replies})} different texts, where an output this short must repeat "
                "whole" if whole else "no more than half begin alike")
        inconclusive(f"greedy decoding (temperature 0) is not repeatable on this target: of {len(regular.replies)} "
                     f"regular temperature-0 requests, {seen} ({regular.texts()}), so {tries} tries that match none "
                     "of them show no deviation")


def how_text_differs(text: str, reference: str, what: str = "the greedy output") -> str:
    """One phrase for how a text that came back stands to the text it was judged against."""
    if text == reference:
        return f"the same as {what}"
    if reference.startswith(text):
        return f"{what} cut {len(reference) - len(text)} characters short" if text else f"empty, where {what} is not"
    if text.startswith(reference):
        return f"{what} and {len(text) - len(reference)} characters more"
    index = next(i for i, (a, b) in enumerate(zip(text, reference)) if a != b)
    return f"departing from {what} at character {index}"


def repetition(text: str, size: int = 4) -> float:
    """Share of character 4-grams that repeat an earlier one (0 = all distinct).

    Characters rather than words, so that it means the same for text without spaces (a
    random-weight model's output) as for prose.
    """
    grams = [text[i:i + size] for i in range(len(text) - size + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def is_legible(text: str) -> bool:
    """Printable and free of U+FFFD (a token that split a UTF-8 character)."""
    return text.isprintable() and "\ufffd" not in text


def expect_reproducible(api: Api, endpoint: str, parameter: str, tries: "Tries", what: str) -> None:
    """Best-effort determinism, judged as the clause allows: some two tries with the same text pass.
    A GPU's drift moves an output off its path late, one token at a time, so when no two agree but
    most begin alike repetition cannot tell drift from a broken parameter (inconclusive); only tries
    that differ from their first characters show `parameter` ignored."""
    if tries.agreed is not None:
        api.observe(endpoint, parameter, Verdict.HONOURED, f"{what}: {tries.describe()}")
        return
    if tries.begin_alike:
        inconclusive(f"{what}: {tries.describe()}, but most begin alike: late drift, as numerical nondeterminism "
                     f"gives, which repetition cannot tell from a broken {parameter} ({tries.texts()})")
    api.observe(endpoint, parameter, Verdict.IGNORED, f"{what}: {tries.describe()}, differing from the start")
    expect(False, f"some two of {len(tries.replies)} tries ({what}) with the same text",
           f"{tries.describe()}, differing from the start: {tries.texts()}")
