"""Function tools and structured output on /responses, and the same request through chat.

Function tools sit flat in the Responses API (`{"type": "function", "name": ...}`, not under
`function` as in chat); a call is a `function_call` item, answered by a `function_call_output`
item; `text.format` asks for JSON.  Arguments and JSON are judged against the schema given, never
for what they say.
"""


from conformance.harness import (
    BEGINNING, LONG_RESULT, SHORT_RESULT, STORY_PROMPT, WEATHER, Level, Mode, Verdict, check, clauses, describe, expect,
    inconclusive, json_problems, not_in_openai, prompt_counts, require_control, require_endpoint, send_judged,
)

from .test_events import FORCED

REGULAR = (Mode.REGULAR,)
SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
          "required": ["title", "year"], "additionalProperties": False}


def _calls(reply) -> list[dict]:
    return [i for i in (reply.response or {}).get("output") or [] if isinstance(i, dict)
            and i.get("type") == "function_call"]


@check(id="responses.tool_choice.named-function", level=Level.MUST, feature="responses.tool_choice",
       parameter="tool_choice", since="0.2.0",
       info="How the model should select which tool (or tools) to use when generating a response.")
def test_named_function(api):
    """A named function in tool_choice is called: one function_call item of that name, with a call_id,
    its arguments JSON valid against the strict tool's schema."""
    require_endpoint(api, "responses")
    reply = send_judged(api, "responses", dict(FORCED), "tool_choice", companions=("tools",))
    calls = _calls(reply)
    if not calls:
        api.observe("responses", "tool_choice", Verdict.IGNORED, "no function_call item")
    expect(calls, f"a function_call item calling {WEATHER['name']}",
           f"output types {[i.get('type') for i in (reply.response or {}).get('output') or []]}",
           finding="`tool_choice` naming a function ignored")
    call = calls[0]
    with clauses() as soft:
        soft.expect(call.get("name") == WEATHER["name"], f"name {WEATHER['name']!r}", describe(call.get("name")))
        soft.expect(isinstance(call.get("call_id"), str) and call["call_id"], "a call_id", describe(call.get("call_id")),
                    finding="a function_call item without call_id")
        problems = json_problems(call.get("arguments"), WEATHER["parameters"])
        soft.expect(not problems, "arguments valid against the strict tool's schema", "; ".join(problems),
                    finding="strict function arguments that break the schema")
    api.observe("responses", "tool_choice", Verdict.HONOURED)


@check(id="responses.tools.output-read", level=Level.MUST, feature="responses.tools", parameter="tools",
       modes=REGULAR, since="0.2.0", info="The output of a function tool call.")
def test_function_output_read(api):
    """The turn after a call is answered from a function_call_output item that is read: a longer
    output counts more input tokens."""
    require_endpoint(api, "responses")
    first = send_judged(api, "responses", dict(FORCED), "tools")
    calls = _calls(first)
    if not calls:
        inconclusive("the forced call was not made (responses.tool_choice.named-function judges that)")
    call = calls[0]
    tool_def = FORCED["tools"]
    replies = []
    for result in (SHORT_RESULT, LONG_RESULT):
        items = [{"role": "user", "content": FORCED["input"]},
                 {"type": "function_call", "call_id": call["call_id"], "name": call["name"],
                  "arguments": call["arguments"]},
                 {"type": "function_call_output", "call_id": call["call_id"], "output": result}]
        replies.append(send_judged(api, "responses", {"input": items, "tools": tool_def, "max_output_tokens": 16,
                                                      "temperature": 0}, "tools"))
    counts = prompt_counts(replies, "the function's output")
    expect(counts[1] > counts[0], "more input tokens with a longer function_call_output", counts,
           "so the output was not read", finding="function_call_output items left unread")


@check(id="responses.text.json-schema", level=Level.MUST, feature="responses.text", parameter="text",
       since="0.2.0", info="Configuration options for a text response from the model.")
def test_text_json_schema(api):
    """text.format `json_schema` with strict gives output_text that is JSON valid against the schema."""
    require_endpoint(api, "responses")
    body = {"input": "Name a book about a lighthouse and the year it was written, as JSON.",
            "text": {"format": {"type": "json_schema", "name": "book", "schema": SCHEMA, "strict": True}},
            "max_output_tokens": 200, "temperature": 0}
    reply = send_judged(api, "responses", body, "text")
    if reply.finish_reason == "length":
        inconclusive("the answer was cut at max_output_tokens before its JSON ended")
    problems = json_problems(reply.text, SCHEMA)
    if problems and json_problems(reply.text):  # not JSON at all: the format had no effect
        api.observe("responses", "text", Verdict.IGNORED, problems[0])
    expect(not problems, "output_text valid against the json_schema", "; ".join(problems),
           finding="`text.format` json_schema ignored")
    api.observe("responses", "text", Verdict.HONOURED)


@check(id="responses.chat-parity.same-text", level=Level.SHOULD, feature="responses.chat-parity",
       clause="responses.conversation-state", modes=REGULAR, since="0.2.0",
       info=not_in_openai("the suite's relation between two endpoints of one target: OpenAI documents both "
                          "as generating from the same models and messages"))
def test_chat_parity(api):
    """The same conversation at temperature 0 gives the same text and the same input token count
    through /responses and /chat/completions (one model, one chat template)."""
    require_endpoint(api, "responses")
    require_endpoint(api, "chat")
    chat = require_control(api, api.create("chat", {"messages": [{"role": "user", "content": STORY_PROMPT}],
                                                    "max_tokens": 16, "temperature": 0}), "the chat request")
    reply = send_judged(api, "responses", {"input": STORY_PROMPT, "max_output_tokens": 16, "temperature": 0}, None)
    chat_tokens = (chat.usage or {}).get("prompt_tokens")
    tokens = (reply.usage or {}).get("input_tokens")
    with clauses() as soft:
        soft.expect(tokens == chat_tokens, f"input_tokens {chat_tokens}, chat's prompt_tokens", describe(tokens),
                    finding="/responses counts another input than chat for the same conversation")
        # Greedy decoding may drift further on (a GPU's nondeterminism); from its very beginning it does not.
        soft.expect(reply.text[:BEGINNING] == chat.text[:BEGINNING], "the text chat gives at temperature 0",
                    f"{reply.text[:80]!r} against chat's {chat.text[:80]!r}",
                    finding="/responses answers another text than chat for the same conversation")
