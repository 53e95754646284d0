"""/v1/models: list the models and retrieve one."""

import time

from conformance.harness import (
    ABSENT, CallPath, Level, Mode, check, clauses, describe, envelope_finding, expect, inconclusive, not_in_openai,
    raw_body, schema_finding, validate, validate_error_envelope,
)

LIST_INFO = ("Lists the currently available models, and provides basic information about each one such as the owner "
             "and availability.")

REGULAR = (Mode.REGULAR,)
APART = 1.1  # seconds between the two lists: a time-of-call `created` (whole seconds) must change


def _listed(api):
    reply = api.list_models()
    expect(reply.status == 200, "HTTP 200", reply.describe())
    expect(reply.sdk_error is None, "the openai SDK to parse the list", reply.sdk_error)
    return reply


@check(id="models.list.shape", level=Level.MUST, feature="models.list", clause="models.list", modes=REGULAR,
       since="0.1.0", info=LIST_INFO)
def test_list_shape(api):
    """GET /models returns {object: 'list', data: [...]} where every entry is a valid model object."""
    body = _listed(api).body
    expect(isinstance(body, dict), "object 'list'", f"a body that is {describe(body)}")
    with clauses() as soft:
        soft.expect(body.get("object") == "list", "object 'list'", describe(body.get("object", ABSENT)))
        data = body.get("data")
        soft.expect(isinstance(data, list) and data, "a non-empty 'data' list", data,
                    "no model listed" if data == [] else None)
        for entry in data if isinstance(data, list) else []:
            problems = validate("model", entry)
            soft.expect(not problems, "every entry a valid model (id, object 'model', created, owned_by)",
                        f"{describe(entry.get('id'))}, whose " + "; ".join(problems) if isinstance(entry, dict)
                        else "; ".join(problems), key="valid entry", finding=schema_finding(problems))


@check(id="models.list.contains-configured", level=Level.SHOULD, feature="models.list", clause="models.list",
       modes=REGULAR,
       since="0.1.0", info=LIST_INFO)
def test_list_contains_configured(api):
    """The list includes the model under test."""
    body = _listed(api).body
    ids = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)] if isinstance(body, dict) else []
    expect(api.model in ids, f"{api.model!r} among the listed models", ids[:20], "without it")


@check(id="models.retrieve.shape", level=Level.MUST, feature="models.retrieve", clause="models.retrieve", modes=REGULAR,
       since="0.1.0", info="Retrieves a model instance, providing basic information about the model such as the "
       "owner and permissioning.")
def test_retrieve(api):
    """GET /models/{id} returns that model as a valid model object."""
    reply = api.retrieve_model(api.model)
    expect(reply.status == 200, "HTTP 200", reply.describe())
    with clauses() as soft:
        problems = validate("model", reply.body)
        soft.expect(not problems, "a valid model object", "; ".join(problems), finding=schema_finding(problems))
        if isinstance(reply.body, dict):
            soft.expect(reply.body.get("id") == api.model, f"id {api.model!r}", describe(reply.body.get("id")),
                        "another model")


@check(id="models.retrieve.unknown-404", level=Level.MUST, feature="models.retrieve", clause="models.retrieve",
       modes=REGULAR,
       since="0.1.0", info=not_in_openai(
           "the OpenAPI document gives GET /models/{model} a 200 response only; a 404 in the error envelope for a "
           "model that does not exist is OpenAI's behaviour (its error-codes guide)"))
def test_retrieve_unknown(api):
    """GET /models/{id} for a model that does not exist returns 404 in OpenAI's error envelope."""
    reply = api.retrieve_model("conformance-no-such-model")
    with clauses() as soft:
        soft.expect(reply.status == 404, "HTTP 404", reply.describe(),
                    "a model that does not exist was served" if reply.ok else None)
        if not reply.ok:  # the envelope of a refusal (a model that was served has none)
            problems = validate_error_envelope(reply.body, raw_body(reply))
            soft.expect(not problems, "OpenAI's error envelope", "; ".join(problems),
                        finding=envelope_finding(problems))


def _created(body, model: str):
    entries = body.get("data") if isinstance(body, dict) else None
    entry = next((m for m in entries or [] if isinstance(m, dict) and m.get("id") == model), None)
    return entry.get("created") if entry is not None else None


@check(id="models.created-stable", level=Level.SHOULD, feature="models.list", clause="models.object", modes=REGULAR,
       paths=(CallPath.HTTP,),
       since="0.1.0", info="The Unix timestamp (in seconds) when the model was created.")
def test_created_stable(api):
    """A model's `created` (when the model was created) is the same in two lists a second apart."""
    started = time.monotonic()
    first = _created(_listed(api).body, api.model)
    if not isinstance(first, int) or isinstance(first, bool):
        inconclusive(f"the list gives {api.model!r} no integer 'created' ({describe(first)}); the shape check judges that")
    time.sleep(max(0.0, APART - (time.monotonic() - started)))
    second = _created(_listed(api).body, api.model)
    expect(second == first, f"the same 'created' {first} for {api.model!r} in a list {APART} s later (the model's "
                            "creation time, not the time of the call)", describe(second))
