"""Quirks of the Responses API (/responses): deviations seen in engines and gateways that ship it,
each breaking one clause, and the legal variations of its event stream.

They act at the Responses seams (base.py): `events_out` for the events of a stream, `body_out` with
kind "responses" (a Response object, created or read back), "input_items" and "deleted", and the
request seams with endpoint "responses".
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from ..render import Chunk, Stream
from ..responses_api import renumber
from .base import Quirk

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
LIFECYCLE = ("response.created", "response.in_progress", "response.queued", *TERMINAL)


def _on_responses(change: Callable[[dict], dict]) -> dict:
    """The same change to every Response object: a regular body (created or read back) and the one
    each lifecycle event of a stream carries."""
    def body_out(kind: str, body: dict) -> dict:
        return change(body) if kind == "responses" else body

    def events_out(stream: Stream) -> list[Chunk]:
        return [dataclasses.replace(c, data={**c.data, "response": change(c.data["response"])})
                if c.kind in LIFECYCLE else c for c in stream.chunks]

    return {"body_out": body_out, "events_out": events_out}


def _drop_events(*kinds: str) -> Callable[[Stream], list[Chunk]]:
    return lambda stream: renumber([c for c in stream.chunks if c.kind not in kinds])


def _request(change: Callable[[dict], dict]) -> Callable:
    return lambda endpoint, request, models: change(request) if endpoint == "responses" else request


def _without_sequence(stream: Stream) -> list[Chunk]:
    return [dataclasses.replace(c, data={k: v for k, v in c.data.items() if k != "sequence_number"})
            for c in stream.chunks]


def _text_done_trimmed(stream: Stream) -> list[Chunk]:
    def change(c: Chunk) -> Chunk:
        if c.kind == "response.output_text.done":
            return dataclasses.replace(c, data={**c.data, "text": c.data["text"].strip()})
        return c
    return [change(c) for c in stream.chunks]


def _ends_completed(stream: Stream) -> list[Chunk]:
    """vLLM's way: a stream cut at max_output_tokens still ends with response.completed."""
    def change(c: Chunk) -> Chunk:
        if c.kind != "response.incomplete":
            return c
        response = {**c.data["response"], "status": "completed", "incomplete_details": None}
        return dataclasses.replace(c, kind="response.completed",
                                   data={**c.data, "type": "response.completed", "response": response})
    return [change(c) for c in stream.chunks]


def _always_completed(response: dict) -> dict:
    if response.get("status") != "incomplete":
        return response
    return {**response, "status": "completed", "incomplete_details": None}


def _content_as_string(response: dict) -> dict:
    def item(i: dict) -> dict:
        if i.get("type") != "message" or not isinstance(i.get("content"), list):
            return i
        return {**i, "content": "".join(p.get("text", "") for p in i["content"])}
    return {**response, "output": [item(i) for i in response.get("output") or []]}


def _last_input_item_only(request: dict) -> dict:
    value = request.get("input")
    return {**request, "input": value[-1:]} if isinstance(value, list) else request


def _string_input_as_system(request: dict) -> dict:
    value = request.get("input")
    return {**request, "input": [{"role": "system", "content": value}]} if isinstance(value, str) else request


def _without_function_outputs(request: dict) -> dict:
    value = request.get("input")
    if not isinstance(value, list):
        return request
    return {**request, "input": [i for i in value if not (isinstance(i, dict) and i.get("type") == "function_call_output")]}


def _default_instructions(request: dict) -> dict:
    if request.get("instructions") is None:
        return {**request, "instructions": "You are a helpful assistant."}
    return request


def _one_delta(stream: Stream) -> list[Chunk]:
    """Every output_text delta of a part in one event (legal: nothing promises a token an event)."""
    out: list[Chunk] = []
    for c in stream.chunks:
        if c.kind == "response.output_text.delta" and out and out[-1].kind == c.kind:
            last = out[-1]
            out[-1] = dataclasses.replace(last, data={**last.data, "delta": last.data["delta"] + c.data["delta"],
                                                      "logprobs": last.data["logprobs"] + c.data["logprobs"]})
        else:
            out.append(c)
    return renumber(out)


def _extension_events(stream: Stream) -> list[Chunk]:
    """An extension event after response.created and a reasoning-free `response.queued`: clients ignore both."""
    chunks = list(stream.chunks)
    extra = [Chunk("response.queued", {"type": "response.queued", "response": {**chunks[0].data["response"],
                                                                                "status": "queued"}}),
             Chunk("acme:trace_event", {"type": "acme:trace_event", "note": "an extension event"})]
    return renumber(chunks[:1] + extra + chunks[1:])


def _sequence_from_one(stream: Stream) -> list[Chunk]:
    return [dataclasses.replace(c, data={**c.data, "sequence_number": c.data["sequence_number"] * 2 + 1})
            for c in stream.chunks]


def _done_sentinel(stream: Stream) -> list[Chunk]:
    return [*stream.chunks, Chunk("done", text="[DONE]")]


def _input_items_empty(kind: str, body: dict) -> dict:
    return {**body, "data": [], "first_id": None, "last_id": None} if kind == "input_items" else body


def _total_plus_one(response: dict) -> dict:
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return response
    return {**response, "usage": {**usage, "total_tokens": usage["total_tokens"] + 1}}


RESPONSES_QUIRKS = [
    Quirk("responses-no-sequence-number", "/responses events carry no sequence_number", ("responses.events",),
          events_out=_without_sequence),
    Quirk("responses-no-created-event", "a /responses stream begins without response.created",
          ("responses.events",), events_out=_drop_events("response.created")),
    Quirk("responses-text-done-trimmed", "output_text.done carries the text trimmed of its spaces, unlike the deltas",
          ("responses.events",), events_out=_text_done_trimmed),
    Quirk("responses-event-names-absent", "/responses events come without `event:` lines (data only)",
          ("responses.events",),
          frames_out=lambda frames: [f.split("\n", 1)[1] if f.startswith("event: response.") else f for f in frames]),
    Quirk("responses-stream-ends-completed", "a stream cut at max_output_tokens ends with response.completed, "
                                             "where the same request answered at once is incomplete",
          ("responses.events",), events_out=_ends_completed),
    Quirk("responses-incomplete-as-completed", "a response cut at max_output_tokens says status 'completed'",
          ("responses.max_output_tokens", "responses.events"), body_out=_on_responses(_always_completed)["body_out"],
          events_out=_ends_completed),  # in a stream only the terminal event's response is finished
    Quirk("responses-incomplete-without-details", "an incomplete response has incomplete_details null",
          ("responses.response",), **_on_responses(lambda r: {**r, "incomplete_details": None})),
    Quirk("responses-usage-miscounted", "usage.total_tokens is not input_tokens + output_tokens",
          ("responses.usage",), **_on_responses(_total_plus_one)),
    Quirk("responses-content-as-string", "a message item's content is a plain string, not output_text parts",
          ("responses.response",), **_on_responses(_content_as_string)),
    Quirk("responses-required-fields-absent", "the Response object has no `tools` and no `parallel_tool_calls`",
          ("responses.response",),
          **_on_responses(lambda r: {k: v for k, v in r.items() if k not in ("tools", "parallel_tool_calls")})),
    Quirk("responses-last-input-item-only", "only the last item of an input list is read", ("responses.input",),
          request_valid=_request(_last_input_item_only)),
    Quirk("responses-string-input-as-system", "a string input is read as a system message, not a user message",
          ("responses.input",), request_valid=_request(_string_input_as_system)),
    Quirk("responses-function-outputs-dropped", "function_call_output input items are dropped", ("responses.tools",),
          request_valid=_request(_without_function_outputs)),
    Quirk("responses-default-instructions", "a request without instructions gets a default system prompt "
                                            "(as gateways add one)", ("responses.chat-parity",),
          request_valid=_request(_default_instructions)),
    Quirk("responses-not-stored", "nothing is stored: GET, input_items and previous_response_id find no response "
                                  "(vLLM's default)", ("responses.store", "responses.retrieve"),
          request_valid=_request(lambda r: {**r, "store": False})),
    Quirk("responses-delete-kept", "DELETE answers deleted: true and the response stays readable",
          ("responses.retrieve",), behaviour={"responses_delete_kept": True}),
    Quirk("responses-input-items-empty", "input_items lists no items", ("responses.retrieve",),
          body_out=_input_items_empty),
    Quirk("responses-argument-deltas-absent", "a streamed function call has no function_call_arguments.delta "
                                              "events, only the done one", ("responses.events",),
          events_out=_drop_events("response.function_call_arguments.delta")),
]

RESPONSES_VARIATIONS = [
    Quirk("responses-one-delta", "a part's whole text in one output_text.delta", (), variation=True,
          events_out=_one_delta),
    Quirk("responses-extension-events", "response.queued and an extension event (acme:trace_event) after "
                                        "response.created", (), variation=True, events_out=_extension_events),
    Quirk("responses-sequence-odd", "sequence_number 1, 3, 5...: increasing, not from 0 nor by 1", (),
          variation=True, events_out=_sequence_from_one),
    Quirk("responses-done-sentinel", "`data: [DONE]` after the terminal event (Open Responses asks for it)", (),
          variation=True, events_out=_done_sentinel),
    Quirk("responses-output-text-field", "the Response carries an `output_text` convenience field", (),
          variation=True, **_on_responses(lambda r: {**r, "output_text": "".join(
              p.get("text", "") for i in r.get("output") or [] if i.get("type") == "message"
              for p in i.get("content") or [])})),
]
