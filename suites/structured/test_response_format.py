"""response_format: plain text, JSON mode (json_object) and Structured Outputs (json_schema, strict).

The oracle is the JSON parser and the schema, never the content; a reply cut by max_tokens
(finish_reason 'length') proves nothing either way and is inconclusive.
"""

import json

from conformance.harness import (
    ABSENT, Level, Mode, Verdict, check, clauses, describe, expect, expect_refusal_naming, expect_text_reply,
    inconclusive, json_problems, require_endpoint, send_judged,
)

ROOM = 300
ASK_JSON = [{"role": "user", "content": "Describe a lighthouse keeper as a JSON object."}]
ASK_PLAIN = [{"role": "user", "content": "Describe a lighthouse keeper."}]
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "traits": {"type": "array", "items": {"type": "string", "enum": ["brave", "calm", "curious"]}},
        "retired": {"type": "boolean"},
    },
    "required": ["name", "age", "traits", "retired"],
    "additionalProperties": False,
}
JSON_OBJECT = {"type": "json_object"}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}}


def _expect_json(api, messages, response_format, schema, expected):
    require_endpoint(api, "chat")
    reply = send_judged(api, "chat", {"messages": messages, "response_format": response_format, "max_tokens": ROOM},
                        "response_format")
    if reply.finish_reason == "length":
        inconclusive(f"the reply was cut at max_tokens={ROOM} (finish_reason 'length'), so it cannot be judged")
    problems = json_problems(reply.text, schema)
    api.observe("chat", "response_format", Verdict.IGNORED if problems else Verdict.HONOURED)
    expect(not problems, expected, "; ".join(problems))


@check(id="chat.response_format.json-object", level=Level.MUST, feature="chat.response_format",
       parameter="response_format", clause="json-mode",
       since="0.1.0", info='Setting to `{ "type": "json_object" }` enables the older JSON mode, which ensures the '
       'message the model generates is valid JSON.')
def test_json_object(api):
    """response_format json_object gets content that parses as one JSON object."""
    _expect_json(api, ASK_JSON, JSON_OBJECT, None, "content that is one JSON object")


@check(id="chat.response_format.json-schema-strict", level=Level.MUST, feature="chat.response_format",
       parameter="response_format",
       since="0.1.0", info='Setting to `{ "type": "json_schema", "json_schema": {...} }` enables Structured Outputs '
       'which ensures the model will match your supplied JSON schema.')
def test_json_schema(api):
    """response_format json_schema (strict) gets content that is JSON valid against the schema."""
    _expect_json(api, ASK_PLAIN, JSON_SCHEMA, PERSON, "content valid against the schema")


@check(id="chat.response_format.text", level=Level.MUST, feature="chat.response_format", parameter="response_format",
       since="0.1.0", info="Default response format. Used to generate text responses.")
def test_text(api):
    """response_format text (the default) is accepted and gets a plain text reply."""
    require_endpoint(api, "chat")
    reply = send_judged(api, "chat", {"messages": ASK_PLAIN, "response_format": {"type": "text"}, "max_tokens": 8},
                        "response_format")
    expect_text_reply(reply)


@check(id="chat.response_format.json-object-needs-json", level=Level.SHOULD, feature="chat.response_format",
       parameter="response_format", clause="json-mode", modes=(Mode.REGULAR,),
       since="0.1.0", info="Note that the model will not generate JSON without a system or user message instructing "
       "it to do so.")
def test_json_word_required(api):
    """json_object mode is refused with 400 naming 'messages' when no message mentions JSON."""
    require_endpoint(api, "chat")
    send_judged(api, "chat", {"messages": ASK_JSON, "response_format": JSON_OBJECT, "max_tokens": ROOM},
                "response_format")  # JSON mode itself is accepted here: the refusal below is about the word
    reply = api.create("chat", {"messages": ASK_PLAIN, "response_format": JSON_OBJECT, "max_tokens": ROOM})
    with clauses() as soft:
        expect_refusal_naming(soft, reply, "messages")
        if reply.error is not None:
            soft.expect("json" in json.dumps(reply.error.get("message", "")).lower(),
                        "a message that says JSON must be mentioned", describe(reply.error.get("message", ABSENT)),
                        "which does not say JSON")
