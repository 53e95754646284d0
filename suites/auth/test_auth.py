"""Authentication: Bearer keys; 401 in OpenAI's envelope when the key is missing or wrong."""

import json

from conformance.harness import (
    CallPath, Level, Mode, STORY_PROMPT, check, clauses, envelope_finding, not_in_openai, prompt_body, raw_body,
    validate_error_envelope,
)

AUTH_INFO = not_in_openai(
    "the OpenAPI document declares the scheme only (securitySchemes ApiKeyAuth: type http, scheme bearer), in no "
    "words; the 401 in OpenAI's error envelope is OpenAI's behaviour, on the authentication page the clause links")

WRONG_KEY = "sk-conformance-wrong-key-0000"


def endpoints(_):
    return [("chat", "chat"), ("completions", "completions"), ("models", "models")]


def _send(api, endpoint, **kwargs):
    if endpoint == "models":
        return api.send_raw("GET", "/models", **kwargs)
    path = {"chat": "/chat/completions", "completions": "/completions"}[endpoint]
    body = {"model": api.model, **prompt_body(endpoint, STORY_PROMPT), "max_tokens": 4}
    return api.send_raw("POST", path, content=json.dumps(body).encode(), **kwargs)


def _expect_401(reply):
    """Two clauses: the status, and the envelope of the refusal (not judged on a reply that was served)."""
    with clauses() as soft:
        soft.expect(reply.status == 401, "HTTP 401", reply.describe(), "the request was served without a valid key"
                    if reply.ok else None,
                    finding="requests without a valid key are served, where OpenAI refuses them with HTTP 401"
                    if reply.ok else None)
        if not reply.ok:
            problems = validate_error_envelope(reply.body, raw_body(reply))
            soft.expect(not problems, "OpenAI's error envelope", "; ".join(problems),
                        finding=envelope_finding(problems))


@check(id="auth.missing-key", level=Level.MUST, feature="auth.key", clause="authentication", endpoints=("auth",),
       variants=endpoints, modes=(Mode.REGULAR,), paths=(CallPath.HTTP,),
       since="0.1.0", info=AUTH_INFO)
def test_missing_key(api, case):
    """A request without an Authorization header is refused with 401 in OpenAI's error envelope."""
    _expect_401(_send(api, case, authorise=False))


@check(id="auth.wrong-key", level=Level.MUST, feature="auth.key", clause="authentication", endpoints=("auth",),
       variants=endpoints, modes=(Mode.REGULAR,),
       since="0.1.0", info=AUTH_INFO)
def test_wrong_key(api, case):
    """A request with a wrong key is refused with 401 in OpenAI's error envelope."""
    if case == "models":
        reply = api.list_models(api_key=WRONG_KEY)
    else:
        reply = api.create(case, {**prompt_body(case, STORY_PROMPT), "max_tokens": 4}, api_key=WRONG_KEY)
    _expect_401(reply)
