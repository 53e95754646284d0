"""The response object: its strict shape, and the model that answered."""

from conformance.harness import (
    Level, Mode, STORY_PROMPT, Verdict, check, clauses, describe, expect, prompt_body, require_accepted,
    require_endpoint, validate,
)

RESPONSE_KIND = {"chat": "chat.completion", "completions": "text_completion"}
CHUNK_KIND = {"chat": "chat.completion.chunk", "completions": "text_completion.chunk"}


@check(id="{endpoint}.response.schema", level=Level.MUST, feature="{endpoint}.response", clause="object.{endpoint}",
       since="0.1.0", info={
           "chat": (
               "Represents a chat completion response returned by model, based on the provided input.",
               "Represents a streamed chunk of a chat completion response returned by the model, based on the "
               "provided input.",
           ),
           "completions": "Note: both the streamed and non-streamed response objects share the same shape (unlike "
                          "the chat endpoint).",
       })
def test_response_schema(api, endpoint):
    """The response, and every chunk of a streamed one, validates strictly against OpenAI's typed model."""
    require_endpoint(api, endpoint)
    reply = api.create(endpoint, {**prompt_body(endpoint, STORY_PROMPT), "max_tokens": 16})
    require_accepted(api, reply, endpoint, None)
    with clauses() as soft:
        soft.expect(reply.sdk_error is None, "the openai SDK to parse the response", reply.sdk_error)
        if api.mode == Mode.STREAM:
            soft.expect(reply.chunks, "at least one JSON chunk in the stream", reply.stream.data[:3],
                        "events, none of them a JSON chunk" if reply.stream.data else "no event")
            for number, chunk in enumerate(reply.stream.chunks, 1):
                problems = validate(CHUNK_KIND[endpoint], chunk)
                soft.expect(not problems, f"chunk {number} to be a valid {CHUNK_KIND[endpoint]}", "; ".join(problems),
                            key="valid chunk")
        else:
            problems = validate(RESPONSE_KIND[endpoint], reply.body)
            soft.expect(not problems, f"a valid {RESPONSE_KIND[endpoint]} object", "; ".join(problems))


@check(id="{endpoint}.model.served", level=Level.MUST, feature="{endpoint}.model", parameter="model",
       since="0.1.0", info={
           "chat": "Model ID used to generate the response, like `gpt-4o` or `o3`.",
           "completions": "ID of the model to use.",
       })
def test_model_served(api, endpoint):
    """Each configured model answers a plain request successfully."""
    require_endpoint(api, endpoint)
    reply = api.create(endpoint, {**prompt_body(endpoint, STORY_PROMPT), "max_tokens": 8})
    require_accepted(api, reply, endpoint, "model")
    api.observe(endpoint, "model", Verdict.HONOURED, f"{api.model} answered")


@check(id="{endpoint}.model.echoed", level=Level.SHOULD, feature="{endpoint}.model", parameter="model",
       since="0.1.0", info={
           "chat": "The model used for the chat completion.",
           "completions": "The model used for completion.",
       })
def test_model_echoed(api, endpoint):
    """The response's `model` names the requested model (OpenAI may append a version suffix)."""
    require_endpoint(api, endpoint)
    reply = api.create(endpoint, {**prompt_body(endpoint, STORY_PROMPT), "max_tokens": 4})
    require_accepted(api, reply, endpoint, "model")
    names = [reply.body.get("model")] if api.mode == Mode.REGULAR else [c.get("model") for c in reply.chunks]
    for name in names:
        expect(isinstance(name, str) and name.startswith(api.model),
               f"'model' to be {api.model!r} (or start with it)", describe(name),
               "another model's name" if isinstance(name, str) else None)
