"""The reference server's tools and JSON output (constrained generation), and how the harness joins
streamed tool-call deltas."""

import json

import httpx2
import jsonschema
import pytest

from conformance.harness.calls import TIME, WEATHER, call_problems, named_tool, tool
from conformance.wire.reply import aggregate_chunks
from conformance.wire.sse import parse_event_stream

NESTED = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "number", "minimum": 1, "maximum": 5},
        "count": {"type": "integer", "minimum": 10, "maximum": 12},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2, "maxItems": 4},
        "owner": {"anyOf": [{"$ref": "#/$defs/person"}, {"type": "null"}]},
        "note": {"type": ["string", "null"]},
        "flag": {"const": True},
    },
    "required": ["title", "score", "count", "tags", "owner", "note", "flag"],
    "additionalProperties": False,
    "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
                         "additionalProperties": False}},
}


@pytest.fixture
def http(reference_server):
    with httpx2.Client(base_url=reference_server.base_url,
                       headers={"Authorization": f"Bearer {reference_server.api_key}"}) as c:
        yield c


def chat(http, content="What is the weather in Paris?", **body):
    return http.post("/chat/completions", json={"model": "ref-small", "messages": [{"role": "user", "content": content}],
                                                **body})


def test_json_schema_output_is_valid_for_every_seed(http):
    response_format = {"type": "json_schema", "json_schema": {"name": "nested", "strict": True, "schema": NESTED}}
    outputs = set()
    for seed in range(12):
        reply = chat(http, response_format=response_format, seed=seed, temperature=1, max_tokens=300).json()
        content = reply["choices"][0]["message"]["content"]
        jsonschema.validate(json.loads(content), NESTED)
        outputs.add(content)
    assert len(outputs) > 6  # the model still chooses: different seeds, different documents
    greedy = [chat(http, response_format=response_format, temperature=0, max_tokens=300).json() for _ in range(2)]
    assert greedy[0]["choices"][0]["message"] == greedy[1]["choices"][0]["message"]


def test_json_output_is_cut_by_max_tokens(http):
    reply = chat(http, content="JSON please", response_format={"type": "json_object"}, max_tokens=3).json()
    assert reply["choices"][0]["finish_reason"] == "length" and reply["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("body, param", [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True,
                                                                 "schema": {"type": "object", "properties": {}}}}},
     "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
     "response_format.json_schema.name"),
    ({"response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "Hi"}]}, "messages"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ({"tools": [tool(WEATHER)], "tool_choice": named_tool("get_time")}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
    ({"functions": [WEATHER], "function_call": {"name": "nope"}}, "function_call"),
    ({"messages": [{"role": "tool", "tool_call_id": "call_x", "content": "orphan"}]}, "messages[0].role"),
])
def test_refusals_name_the_parameter(http, body, param):
    body = {"model": "ref-small", "messages": [{"role": "user", "content": "Hi"}], **body}
    reply = http.post("/chat/completions", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param, reply.text


def test_tool_choice_plans(http):
    both = [tool(WEATHER), tool(TIME)]
    ask_both = "What is the weather in Paris and the time there?"

    def names(reply):
        return [c["function"]["name"] for c in reply["choices"][0]["message"].get("tool_calls") or []]

    assert names(chat(http, ask_both, tools=both).json()) == ["get_weather", "get_time"]
    assert names(chat(http, ask_both, tools=both, parallel_tool_calls=False).json()) == ["get_weather"]
    assert names(chat(http, "Tell me a story.", tools=both, max_tokens=4).json()) == []  # auto: nothing relevant
    assert names(chat(http, "Tell me a story.", tools=both, tool_choice="required").json()) == ["get_weather"]
    assert names(chat(http, ask_both, tools=both, tool_choice="none", max_tokens=4).json()) == []
    reply = chat(http, tools=both, tool_choice=named_tool("get_time")).json()
    assert names(reply) == ["get_time"] and reply["choices"][0]["message"]["content"] is None
    assert all(not call_problems(c) for c in reply["choices"][0]["message"]["tool_calls"])


def test_streamed_tool_calls_join_into_the_regular_shape(http):
    body = {"model": "ref-small", "messages": [{"role": "user", "content": "Weather and time in Paris?"}],
            "tools": [tool(WEATHER), tool(TIME)], "tool_choice": "required", "temperature": 0, "stream": True}
    raw = http.post("/chat/completions", json=body).content
    chunks = [json.loads(e.data) for e in parse_event_stream(raw).events if e.data != "[DONE]"]
    streamed = aggregate_chunks("chat", chunks)[0]
    regular = http.post("/chat/completions", json={**body, "stream": False}).json()["choices"][0]
    assert streamed.finish_reason == regular["finish_reason"] == "tool_calls"
    strip = [{**c, "id": None} for c in regular["message"]["tool_calls"]]
    assert [{**c, "id": None} for c in streamed.tool_calls] == strip
    assert all(not call_problems(c) for c in streamed.tool_calls)


def test_best_of_returns_n_and_bills_every_candidate(http):
    body = {"model": "ref-small", "prompt": "Once upon a time", "max_tokens": 5, "temperature": 1}
    reply = http.post("/completions", json={**body, "best_of": 4, "n": 2}).json()
    assert len(reply["choices"]) == 2 and [c["index"] for c in reply["choices"]] == [0, 1]
    assert reply["usage"]["completion_tokens"] > sum(len(c["text"].split()) for c in reply["choices"])


def test_function_follow_up_is_read(http):
    call = {"name": "get_weather", "arguments": "{}"}

    def ask(result):
        messages = [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": None,
                                                             "function_call": call},
                    {"role": "function", "name": "get_weather", "content": result}]
        return http.post("/chat/completions", json={"model": "ref-small", "messages": messages, "max_tokens": 2}).json()

    assert ask("sunny and warm all day")["usage"]["prompt_tokens"] > ask("sunny")["usage"]["prompt_tokens"]
