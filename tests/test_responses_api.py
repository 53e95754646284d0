"""The Responses API layer: the reference server's /responses, its store and events, the event
grammar reader (conformance.wire.events), and a Reply of /responses read through both paths."""

import json

import httpx2
import pytest

from conformance.harness.schema import validate
from conformance.report.allure import category_of
from conformance.server.http import ReferenceServer
from conformance.wire.events import read_events
from conformance.wire.reply import choices_from_response

KEY = "test-key"
WEATHER = {"type": "function", "name": "get_weather", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}


@pytest.fixture(scope="module")
def client():
    with ReferenceServer(KEY) as server:
        with httpx2.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {KEY}"}) as c:
            yield c


def _events(response) -> tuple[list[str], list[dict]]:
    names, events = [], []
    for frame in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        if "data" in lines:
            names.append(lines.get("event"))
            events.append(json.loads(lines["data"]))
    return names, events


def test_a_response_and_its_stream_are_valid_and_say_the_same(client):
    body = {"model": "ref-small", "input": "Say hello", "max_output_tokens": 16, "temperature": 0}
    regular = client.post("/responses", json=body).json()
    assert validate("response", regular) == []
    names, events = _events(client.post("/responses", json={**body, "stream": True}))
    assert names == [e["type"] for e in events]
    assert all(validate("response.event", e) == [] for e in events)
    view = read_events(events)
    assert (view.order, view.sequence, view.text, view.arguments) == ([], [], [], [])
    assert [e["type"] for e in events][:4] == ["response.created", "response.in_progress",
                                               "response.output_item.added", "response.content_part.added"]
    assert view.final["status"] == regular["status"] == "incomplete"
    assert view.joined_text == regular["output"][0]["content"][0]["text"]
    # the same prompt through chat: the same text and token counts (one generation, two renderings)
    chat = client.post("/chat/completions", json={"model": "ref-small", "messages": [{"role": "user", "content": "Say hello"}],
                                                  "max_tokens": 16, "temperature": 0}).json()
    assert chat["choices"][0]["message"]["content"] == view.joined_text
    assert chat["usage"]["prompt_tokens"] == regular["usage"]["input_tokens"]


def test_the_store_reads_back_deletes_and_continues(client):
    created = client.post("/responses", json={"model": "ref-small", "input": "Say hello", "max_output_tokens": 16}).json()
    got = client.get(f"/responses/{created['id']}").json()
    assert (got["id"], got["output"]) == (created["id"], created["output"])
    items = client.get(f"/responses/{created['id']}/input_items").json()
    assert items["data"][0]["content"] == [{"type": "input_text", "text": "Say hello"}]
    chained = client.post("/responses", json={"model": "ref-small", "input": "Again", "max_output_tokens": 16,
                                              "previous_response_id": created["id"]}).json()
    alone = client.post("/responses", json={"model": "ref-small", "input": "Again", "max_output_tokens": 16}).json()
    assert chained["usage"]["input_tokens"] > alone["usage"]["input_tokens"] + created["usage"]["input_tokens"]
    assert client.delete(f"/responses/{created['id']}").json() == {"id": created["id"], "object": "response",
                                                                    "deleted": True}
    gone = client.get(f"/responses/{created['id']}")
    assert gone.status_code == 404 and set(gone.json()["error"]) == {"message", "type", "param", "code"}
    unkept = client.post("/responses", json={"model": "ref-small", "input": "Hi", "max_output_tokens": 16,
                                             "store": False}).json()
    assert client.get(f"/responses/{unkept['id']}").status_code == 404
    refused = client.post("/responses", json={"model": "ref-small", "input": "Hi", "previous_response_id": "resp_x"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "previous_response_id"


def test_a_forced_function_call_streams_its_arguments(client):
    body = {"model": "ref-small", "input": "Say hello", "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"}, "stream": True}
    _, events = _events(client.post("/responses", json=body))
    view = read_events(events)
    assert (view.order, view.arguments) == ([], [])
    (call,) = view.final["output"]
    assert call["type"] == "function_call" and json.loads(call["arguments"]).keys() == {"city"}
    (choice,) = choices_from_response(view.final)
    assert choice.finish_reason == "tool_calls" and choice.tool_calls[0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("body, param", [
    ({"input": "Hi", "max_output_tokens": 15}, "max_output_tokens"),
    ({"input": [{"type": "bogus"}]}, "input[0]"),
    ({"input": "Hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"input": "Hi", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name"),
    ({"input": "Hi", "reasoning": {"effort": "low"}}, "reasoning.effort"),
    ({"input": "Hi", "include": ["everything"]}, "include[0]"),
])
def test_invalid_requests_are_refused_naming_the_property(client, body, param):
    answer = client.post("/responses", json={"model": "ref-small", **body})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param


def _event(kind, n, **fields):
    return {"type": kind, "sequence_number": n, **fields}


def _text_stream(deltas, done_text=None, final_text=None):
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "".join(deltas), "annotations": []}]}
    final_item = {**item, "content": [{**item["content"][0], "text": final_text or "".join(deltas)}]}
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events = [_event("response.created", 0, response={"status": "in_progress", "output": []}),
              _event("response.output_item.added", 1, output_index=0, item={**item, "content": []}),
              _event("response.content_part.added", 2, **where, part={"type": "output_text", "text": ""})]
    events += [_event("response.output_text.delta", 3 + i, **where, delta=d) for i, d in enumerate(deltas)]
    n = 3 + len(deltas)
    events += [_event("response.output_text.done", n, **where, text=done_text or "".join(deltas)),
               _event("response.content_part.done", n + 1, **where, part=item["content"][0]),
               _event("response.output_item.done", n + 2, output_index=0, item=item),
               _event("response.completed", n + 3, response={"status": "completed", "output": [final_item]})]
    return events


def test_the_grammar_reader_names_what_breaks_each_clause():
    assert not read_events(_text_stream(["Hel", "lo"])).order
    assert read_events(_text_stream(["Hel", "lo"])[1:]).order[0].finding == \
        "the stream does not begin with response.created"
    view = read_events(_text_stream(["Hel", "lo"], done_text="Hello!"))
    assert view.text[0].finding == "text deltas do not join to output_text.done"
    view = read_events(_text_stream(["Hel", "lo"], final_text="Goodbye"))
    assert view.text[0].finding == "the final response's output differs from the items streamed"
    events = _text_stream(["Hel", "lo"])
    events[4]["sequence_number"] = 1
    assert read_events(events).sequence[0].finding == "sequence_number not strictly increasing"
    events = _text_stream(["Hel", "lo"])
    del events[-1]
    assert read_events(events).order[-1].finding.startswith("the stream ends without response.completed")
    events = _text_stream(["Hel", "lo"])
    events.insert(1, {"type": "acme:trace_event", "sequence_number": 0})  # an extension event: ignored
    for n, e in enumerate(events):
        e["sequence_number"] = n
    assert read_events(events).order == []


def test_a_broken_event_grammar_is_filed_as_stream_framing():
    record = {"outcome": "fail", "check": "responses.events.order", "feature": "responses.events", "message": "x"}
    assert category_of(record) == "stream framing"
