"""Oracles for JSON output and function calls: what a call or a JSON reply must look like.

They judge structure against a JSON Schema (the `jsonschema` package, draft 2020-12), never the
content: a model need not be clever to be conformant, only to follow the schema it was given.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from .checks import ABSENT, describe, expect, inconclusive
from .oracles import prompt_counts, require_accepted

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
TIME = {
    "name": "get_time",
    "description": "Get the local time in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
FUNCTIONS = {f["name"]: f for f in (WEATHER, TIME)}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
ROOM = 200  # max_tokens: room for any arguments of the example functions


def tool(function: dict, strict: bool = False) -> dict:
    """A tool; `strict` asks for arguments that follow the schema exactly (Structured Outputs)."""
    return {"type": "function", "function": {**function, "strict": True} if strict else function}


def named_tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name}}


def json_problems(text: Any, schema: dict | None = None) -> list[str]:
    """Why `text` is not a JSON document (an object, and valid against `schema` if given)."""
    if not isinstance(text, str):
        return [f"{describe(text, article=True)}, not a string holding JSON"]
    try:
        value = json.loads(text)
    except ValueError as exc:
        return [f"{describe(text, room=120, article=True)}, which is not valid JSON ({exc})"]
    if not isinstance(value, dict):
        return [f"JSON that is {describe(value, article=True)}, not an object"]
    if schema is None:
        return []
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(value)]


def call_problems(call: dict, functions: dict[str, dict] = FUNCTIONS, strict: bool = False) -> list[str]:
    """Why one tool call ({id, type, function: {name, arguments}}) is not a well-formed call of one of
    `functions` (see function_call_problems for the arguments)."""
    problems = []
    if not (isinstance(call.get("id"), str) and call["id"]):
        problems.append(f"id is {describe(call.get('id', ABSENT), article=True)}, not a non-empty string")
    if call.get("type") != "function":
        problems.append(f"type is {describe(call.get('type', ABSENT), article=True)}, not 'function'")
    return problems + function_call_problems(call.get("function") or {}, functions, strict)


def function_call_problems(function_call: dict, functions: dict[str, dict] = FUNCTIONS,
                           strict: bool = False) -> list[str]:
    """Why a {name, arguments} pair is not a call of one of `functions`. The arguments are a string;
    OpenAI says that without `strict` the model "does not always generate valid JSON, and may
    hallucinate parameters", so only a strict call's arguments must be JSON valid against the schema."""
    name = function_call.get("name", ABSENT)
    if not isinstance(name, str) or name not in functions:
        return [f"function.name is {describe(name, article=True)}, not one of {sorted(functions)}"]
    arguments = function_call.get("arguments", ABSENT)
    if not strict:
        return [] if isinstance(arguments, str) else [f"arguments are {describe(arguments, article=True)}, "
                                                      "not a string holding JSON"]
    return [f"arguments: {p}" for p in json_problems(arguments, functions[name]["parameters"])]


CALL_MARKERS = ("<tool_call>", "{", "[")  # how a call being written begins, parsed or not


def require_complete(reply) -> None:
    """A reply cut at max_tokens in the middle of a call (a random model can ramble inside the
    arguments past any room) cannot be judged: the call was begun, and what it would have been is
    unknown. Plain text cut at the limit is judged: a call forced by tool_choice begins at once."""
    choice = reply.choices[0] if reply.choices else None
    if choice is None or choice.finish_reason != "length":
        return
    begun = choice.tool_calls or choice.function_call or choice.text.lstrip().startswith(CALL_MARKERS)
    if begun:
        inconclusive(f"the reply was cut at max_tokens (finish_reason 'length') in the middle of a call: "
                     f"{(choice.text or str(choice.tool_calls or choice.function_call))[:120]!r}")


def expect_text_reply(reply) -> None:
    """A text reply in content. Empty is legal when the model ended at once (finish_reason 'stop'):
    a random-weight model may end its first token."""
    choice = reply.choices[0] if reply.choices else None
    expect(choice is not None and (choice.text or choice.finish_reason == "stop"),
           "a text reply in content (or an empty one that ended with finish_reason 'stop')",
           {"content": choice.text, "finish_reason": choice.finish_reason} if choice else reply.describe(),
           "empty content that did not end by itself" if choice else "no choice")


SHORT_RESULT = "Sunny."
LONG_RESULT = ("Sunny, 21 degrees, a light wind from the west, no rain expected until tomorrow evening, "
               "and a clear night with a low of 12 degrees.")


def expect_result_read(api, build, extra: dict, parameter: str) -> None:
    """The turn after a call is answered, and the result is read: a longer result, more prompt tokens.

    A refusal of the result message is judged as a refusal of `parameter` (unsupported only where
    the target does not offer it)."""
    replies = []
    for result in (SHORT_RESULT, LONG_RESULT):
        reply = api.create("chat", {"messages": build(result), **extra, "max_tokens": 8})
        replies.append(require_accepted(api, reply, "chat", parameter))
    for reply in replies:
        expect(reply.choices and reply.choices[0].role == "assistant", "an assistant message",
               f"role {describe(reply.choices[0].role)}" if reply.choices else f"no choice ({reply.describe()})")
    counts = prompt_counts(replies, "the result")
    expect(counts[1] > counts[0], "more prompt tokens with a longer result (the result is read)", counts,
           "so the result was not read")
