"""Errors: OpenAI's envelope and status codes for bad requests.

The invalid values come from the parameter catalogue (conformance/config/data/parameters.toml), whose
ranges and limits are read from OpenAI's OpenAPI document.
"""

import json

from conformance.harness import (
    ABSENT, CallPath, Level, Mode, STORY_PROMPT, check, clauses, describe, expect_envelope, expect_refusal_naming,
    limit_body, load_catalogue, not_in_openai, prompt_body, require_declared_extension, require_endpoint,
)

ERRORS_INFO = not_in_openai(
    "the error-codes guide the clause links: the OpenAPI document gives the error object's shape (Error: code, "
    "message, param, type, all required) in no words, and no 400 or 404 responses for these endpoints")

UNKNOWN_MODEL = "conformance-no-such-model"
UNKNOWN_PARAMETER = "conformance_unknown_parameter"
REGULAR = (Mode.REGULAR,)
ALL = ("chat", "completions", "responses")
PATHS = {"chat": "/chat/completions", "completions": "/completions", "responses": "/responses"}


def invalid_values(endpoint):
    return [(f"{p.name}={json.dumps(bad.value, separators=(',', ':'))[:30]}", (p.name, bad))
            for p in load_catalogue().for_endpoint(endpoint) for bad in p.invalid]


def required_parameters(endpoint):
    return [(p.name, p.name) for p in load_catalogue().for_endpoint(endpoint) if p.required]


def _shared(api, key, send):
    """One request per key, model, mode and path, shared by the MUST and the SHOULD check; the
    second of the two takes it out of the cache, so the cache does not grow with the run."""
    key = (*key, api.model, api.mode, api.path)
    cache = api.runtime.cache
    if key in cache:
        return api.adopt(cache.pop(key))
    cache[key] = reply = send()
    return api.adopt(reply)


def _invalid_reply(api, endpoint, case):
    name, bad = case
    require_declared_extension(api, name)
    body = {**prompt_body(endpoint, STORY_PROMPT), **limit_body(endpoint, 4), name: bad.value}
    return _shared(api, ("invalid", endpoint, name, json.dumps(bad.value)), lambda: api.create(endpoint, body))


@check(id="{endpoint}.errors.invalid-value", level=Level.MUST, feature="{endpoint}.errors", clause="errors", endpoints=ALL,
       variants=invalid_values,
       since="0.1.0", info=ERRORS_INFO)
def test_invalid_value(api, endpoint, case):
    """An invalid parameter value is answered with 400 in OpenAI's error envelope (also when streaming)."""
    require_endpoint(api, endpoint)
    expect_envelope(_invalid_reply(api, endpoint, case), 400, "an invalid value")


@check(id="{endpoint}.errors.invalid-value-names-param", level=Level.SHOULD, feature="{endpoint}.errors",
       clause="errors", variants=invalid_values, endpoints=ALL,
       since="0.1.0", info=ERRORS_INFO)
def test_invalid_value_names_param(api, endpoint, case):
    """The error for an invalid parameter value names that parameter in error.param."""
    require_endpoint(api, endpoint)
    reply = _invalid_reply(api, endpoint, case)
    _, bad = case
    with clauses() as soft:
        expect_refusal_naming(soft, reply, bad.param, f"error.param {bad.param!r} ({bad.why})")


def _missing_reply(api, endpoint, name):
    body = {"model": api.model, **prompt_body(endpoint, STORY_PROMPT), **limit_body(endpoint, 4)}
    body.pop(name)
    return _shared(api, ("missing", endpoint, name),
                   lambda: api.send_raw("POST", PATHS[endpoint],
                                        content=json.dumps(body).encode()))


@check(id="{endpoint}.errors.missing-required", level=Level.MUST, feature="{endpoint}.errors", clause="errors", endpoints=ALL,
       variants=required_parameters, modes=REGULAR, paths=(CallPath.HTTP,),
       since="0.1.0", info=ERRORS_INFO)
def test_missing_required(api, endpoint, case):
    """A request without a required parameter is answered with 400 in OpenAI's error envelope."""
    require_endpoint(api, endpoint)
    expect_envelope(_missing_reply(api, endpoint, case), 400, "a request without a required parameter")


@check(id="{endpoint}.errors.missing-required-names-param", level=Level.SHOULD, feature="{endpoint}.errors",
       clause="errors", variants=required_parameters, modes=REGULAR, paths=(CallPath.HTTP,), endpoints=ALL,
       since="0.1.0", info=ERRORS_INFO)
def test_missing_required_names_param(api, endpoint, case):
    """The error for a missing required parameter names it in error.param."""
    require_endpoint(api, endpoint)
    reply = _missing_reply(api, endpoint, case)
    with clauses() as soft:
        expect_refusal_naming(soft, reply, case, refused="a request without a required parameter")


@check(id="{endpoint}.errors.unknown-model", level=Level.MUST, feature="{endpoint}.errors", clause="errors", endpoints=ALL,
       since="0.1.0", info=ERRORS_INFO)
def test_unknown_model(api, endpoint):
    """A model the target does not serve is answered with 404 in OpenAI's error envelope."""
    require_endpoint(api, endpoint)
    reply = api.create(endpoint, {**prompt_body(endpoint, STORY_PROMPT), **limit_body(endpoint, 4)}, model=UNKNOWN_MODEL)
    expect_envelope(reply, 404, "an unknown model")


@check(id="{endpoint}.errors.unknown-model-code", level=Level.SHOULD, feature="{endpoint}.errors", clause="errors",
       modes=REGULAR, endpoints=ALL,
       since="0.1.0", info=ERRORS_INFO)
def test_unknown_model_code(api, endpoint):
    """The error for an unknown model has code 'model_not_found'."""
    require_endpoint(api, endpoint)
    reply = api.create(endpoint, {**prompt_body(endpoint, STORY_PROMPT), **limit_body(endpoint, 4)}, model=UNKNOWN_MODEL)
    with clauses() as soft:
        with soft.clause():
            expect_envelope(reply, 404, "an unknown model")
        if reply.error is not None:
            soft.expect(reply.error.get("code") == "model_not_found", "error.code 'model_not_found'",
                        describe(reply.error.get("code", ABSENT)))


@check(id="{endpoint}.errors.unknown-parameter", level=Level.MUST, feature="{endpoint}.errors", clause="errors", endpoints=ALL,
       since="0.1.0", info=ERRORS_INFO)
def test_unknown_parameter(api, endpoint):
    """A parameter OpenAI does not know is refused with 400, not silently accepted."""
    require_endpoint(api, endpoint)
    reply = api.create(endpoint, {**prompt_body(endpoint, STORY_PROMPT), **limit_body(endpoint, 4), UNKNOWN_PARAMETER: 1})
    expect_envelope(reply, 400, "an unknown parameter")


@check(id="{endpoint}.errors.malformed-json", level=Level.MUST, feature="{endpoint}.errors", clause="errors",
       modes=REGULAR, paths=(CallPath.HTTP,), endpoints=ALL,
       since="0.1.0", info=ERRORS_INFO)
def test_malformed_json(api, endpoint):
    """A body that is not valid JSON is answered with 400 in OpenAI's error envelope."""
    require_endpoint(api, endpoint)
    reply = api.send_raw("POST", PATHS[endpoint], content=b'{"model": "' + api.model.encode() + b'", "max_tokens": 4,')
    expect_envelope(reply, 400, "a body that is not JSON")
