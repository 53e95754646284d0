"""Shared metamorphic helpers: control requests, cached greedy baselines, acceptance verdicts.

Design rule: before judging a parameter, a control request without it must succeed, so that
"ignored", "rejected" and "broken" can be told apart.  A baseline is the greedy (temperature 0)
output of a prompt; it is taken twice, and when the two differ the oracles built on it are
inconclusive rather than failed.
"""

from __future__ import annotations

import json

from .catalogue import load_catalogue
from .checks import Deviation, expect, inconclusive, unsupported
from .client import Api, Reply
from .schema import validate_error_envelope
from .transport import InfrastructureError

# Prompts chosen so that greedy decoding repeats itself on small and large models alike.
REPEATING_PROMPT = "Continue this list, one word per line, and never stop: apple, apple, apple, apple, apple,"
STORY_PROMPT = "Write a long story about a lighthouse keeper who finds a map."
OTHER_PROMPT = "List the planets of the solar system and describe each of them in detail."


def prompt_body(endpoint: str, text: str) -> dict:
    if endpoint == "chat":
        return {"messages": [{"role": "user", "content": text}]}
    return {"prompt": text}


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
    if reply.mode == "stream" and reply.stream and reply.stream.problems:
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
            api.observe(endpoint, parameter, "rejected", reply.describe())
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
        api.observe(endpoint, parameter, "broken", reply.describe())
    raise Deviation(f"expected a successful response; got {reply.describe()}")


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
        control = api.create(endpoint, _control_body(body, parameter, companions), **kwargs)
        if not control.ok:
            inconclusive(f"the request fails without '{parameter}' too ({control.describe()}), so '{parameter}' "
                         "cannot be judged")
        present = [c for c in companions if c in body]
        if present and api.create(endpoint, {k: v for k, v in body.items() if k not in present}, **kwargs).ok:
            parameter = present[0]  # the parameter alone is accepted: its companion is what is refused
    require_accepted(api, reply, endpoint, parameter)
    if reply.mode == "stream" and reply.stream is not None and reply.stream.problems:
        if parameter is not None:
            api.observe(endpoint, parameter, "broken", reply.stream.problems[0])
        raise Deviation(f"expected a well-formed event stream; got {reply.stream.problems[0]}")
    return reply


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
    api.observe(endpoint, parameter, "broken", str(failure))
    raise Deviation(f"expected a response with '{parameter}'; the connection failed in {rounds + 1} rounds of "
                    f"retries ({failure}), while the same request without it succeeded")


def expect_envelope(reply: Reply, status: int) -> None:
    """The reply is an error with `status` in OpenAI's envelope (and not an event stream)."""
    if reply.stream is not None and reply.stream.data:
        expect(False, f"HTTP {status} with a JSON error, not an event stream",
               f"HTTP {reply.status} event stream {reply.stream.data[:2]}")
    expect(reply.status == status, f"HTTP {status}", reply.describe())
    problems = validate_error_envelope(reply.body)
    expect(not problems, "OpenAI's error envelope {error: {message, type, param, code}}", "; ".join(problems))


def greedy_baseline(api: Api, endpoint: str, body: dict, max_tokens: int) -> Reply:
    """The greedy output of `body`, taken twice to prove it is repeatable; one per run, shared by
    the checks and the workers that need it."""
    request = {**body, "temperature": 0, "max_tokens": max_tokens}
    key = ("greedy", endpoint, api.model, json.dumps(request, sort_keys=True))
    cache = api.runtime.cache
    if key not in cache:
        def send() -> list:
            first = api.create(endpoint, request, mode="regular", path="http")
            return [first, api.create(endpoint, request, mode="regular", path="http") if first.ok else None]

        cache[key] = tuple(api.runtime.shared.get(json.dumps(key), send))
    first, second = cache[key]
    api.adopt(first)
    require_control(api, first, "the greedy baseline request")
    api.adopt(second)
    require_control(api, second, "the repeated greedy baseline request")
    if first.text != second.text:
        inconclusive("greedy decoding (temperature 0) is not repeatable on this target: two identical "
                      f"requests gave {first.text[:80]!r} and {second.text[:80]!r}")
    return first


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
