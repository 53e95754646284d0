"""Conversation state on /responses: a stored response read back (GET, input_items), deleted, and
continued by `previous_response_id`; `store: false` keeps nothing.

These requests are sent `fresh` (never answered from another instance's identical request): the
clause is about what the target keeps of this very response.
"""

from conformance.harness import (
    Level, Mode, Verdict, check, clauses, describe, expect, expect_envelope, prompt_counts, require_control,
    require_endpoint, send_judged,
)

from .test_response import TEXT

REGULAR = (Mode.REGULAR,)


def created(api, body=TEXT, parameter=None):
    require_endpoint(api, "responses")
    reply = send_judged(api, "responses", dict(body), parameter, fresh=True)
    response = reply.response or {}
    expect(isinstance(response.get("id"), str) and response["id"], "the response's id", describe(response.get("id")),
           finding="a response without an id")
    return reply, response


def _same_answer(soft, got: dict, created_response: dict, what: str) -> None:
    for field in ("id", "status", "output"):
        soft.expect(got.get(field) == created_response.get(field), f"{what}'s {field} to be the created response's",
                    describe(got.get(field)), key=field, finding=f"a stored response read back with another {field}")


@check(id="responses.store.retrievable", level=Level.MUST, feature="responses.store", parameter="store",
       since="0.2.0", info="Whether to store the generated model response for later retrieval via API.")
def test_store_retrievable(api):
    """A response stored (the default) is returned by GET /responses/{id} as it was created: the same
    id, status and output."""
    _, response = created(api)
    got = api.stored("GET", response["id"])
    if got.status == 404:
        api.observe("responses", "store", Verdict.IGNORED, "GET answered 404")
    expect(got.ok, "HTTP 200 for GET of the response just stored", got.describe(),
           finding="a stored response cannot be read back")
    with clauses() as soft:
        _same_answer(soft, got.body or {}, response, "GET")
    api.observe("responses", "store", Verdict.HONOURED)


@check(id="responses.store.false-not-kept", level=Level.SHOULD, feature="responses.store", parameter="store",
       modes=REGULAR, since="0.2.0", info="Whether to store the generated model response for later retrieval via API.")
def test_store_false(api):
    """A response created with `store: false` is not kept: GET answers 404 in OpenAI's envelope."""
    _, response = created(api, {**TEXT, "store": False}, "store")
    got = api.stored("GET", response["id"])
    if got.ok:
        api.observe("responses", "store", Verdict.IGNORED, "a response created with store false was kept")
    expect_envelope(got, 404, "reading a response created with store false")


@check(id="responses.retrieve.delete", level=Level.MUST, feature="responses.retrieve", clause="responses.delete",
       modes=REGULAR, since="0.2.0", info="Deletes a model response with the given ID.")
def test_delete(api):
    """DELETE /responses/{id} deletes it: the answer says `deleted: true`, and a GET after it answers
    404 in OpenAI's envelope."""
    _, response = created(api)
    deleted = api.stored("DELETE", response["id"])
    expect(deleted.ok, "HTTP 200 for DELETE of a stored response", deleted.describe(),
           finding="a stored response cannot be deleted")
    body = deleted.body if isinstance(deleted.body, dict) else {}
    with clauses() as soft:
        soft.expect(body.get("deleted") is True and body.get("id") == response["id"],
                    f"{{id: {response['id']!r}, object: 'response', deleted: true}}", describe(deleted.body),
                    finding="DELETE does not answer deleted: true")
        with soft.clause():
            expect_envelope(api.stored("GET", response["id"]), 404, "reading a deleted response")


@check(id="responses.retrieve.input-items", level=Level.MUST, feature="responses.retrieve",
       clause="responses.input-items", modes=REGULAR, since="0.2.0",
       info="Returns a list of input items for a given response.")
def test_input_items(api):
    """GET /responses/{id}/input_items lists the input: a string input as one user message whose
    input_text is that string, in a list with first_id and last_id."""
    _, response = created(api)
    listed = api.stored("GET", response["id"], "input_items")
    expect(listed.ok, "HTTP 200 for the input items of a stored response", listed.describe(),
           finding="input_items cannot be read")
    page = listed.body if isinstance(listed.body, dict) else {}
    data = page.get("data") if isinstance(page.get("data"), list) else []
    with clauses() as soft:
        soft.expect(page.get("object") == "list", "object 'list'", describe(page.get("object")))
        texts = [part.get("text") for item in data if isinstance(item, dict) and item.get("role") == "user"
                 for part in item.get("content") or [] if isinstance(part, dict) and part.get("type") == "input_text"]
        soft.expect(texts == [TEXT["input"]], "one user message with the input as input_text",
                    describe(data), finding="input_items do not list the input")
        ids = [item.get("id") for item in data if isinstance(item, dict)]
        if ids:
            soft.expect(page.get("first_id") == ids[0] and page.get("last_id") == ids[-1],
                        "first_id and last_id naming the first and last item listed",
                        describe({k: page.get(k) for k in ("first_id", "last_id")}))


FOLLOW_UP = "And what happened the next morning?"


@check(id="responses.previous_response_id.continues", level=Level.MUST, feature="responses.previous_response_id",
       parameter="previous_response_id", since="0.2.0",
       info="The unique ID of the previous response to the model.")
def test_previous_response_continues(api):
    """A request with previous_response_id reads the previous turn: it counts more input tokens than
    its own input alone and than the previous request's input."""
    first, response = created(api)
    alone = require_control(api, api.create("responses", {**TEXT, "input": FOLLOW_UP}), "the follow-up alone")
    chained = send_judged(api, "responses", {**TEXT, "input": FOLLOW_UP, "previous_response_id": response["id"]},
                          "previous_response_id", fresh=True)
    counts = prompt_counts([first, alone, chained], "the previous response")
    if not counts[2] > counts[1]:
        api.observe("responses", "previous_response_id", Verdict.IGNORED, f"input_tokens {counts}")
    expect(counts[2] > counts[0] and counts[2] > counts[1],
           "more input tokens than the previous input and than the follow-up alone",
           f"input_tokens {counts[2]} chained, {counts[0]} for the previous request, {counts[1]} for the follow-up "
           "alone", "so the previous turn was not read", finding="`previous_response_id` ignored")
    api.observe("responses", "previous_response_id", Verdict.HONOURED)
