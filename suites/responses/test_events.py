"""A streamed /responses answer as a grammar, not a shape (conformance.wire.events): the events'
order, their sequence numbers, their names, and the text and arguments they build.

OpenAI's document gives each event's fields (ResponseStreamEvent) and its example stream gives the
order; the Open Responses specification states the order and the `event:` name as MUSTs.  A check
here reads the raw bytes (the http path) or the SDK's own events (the sdk path) the same way.
"""

import json

from conformance.harness import (
    MIN_OUTPUT_TOKENS, REPEATING_PROMPT, WEATHER, Level, Mode, check, clauses, describe, expect, greedy_baseline,
    how_text_differs, json_problems, not_in_openai, read_events, require_endpoint, require_repeatable_greedy,
    send_judged, until_greedy_related,
)

from .test_response import TEXT

STREAM = (Mode.STREAM,)
OPEN_RESPONSES = ("the Open Responses specification (openresponses.org), which states it as a MUST; OpenAI's "
                  "document shows it in its streaming example without words")


def streamed(api, body=TEXT, parameter=None):
    require_endpoint(api, "responses")
    reply = send_judged(api, "responses", dict(body), parameter)
    expect(reply.events, "typed events in the stream", describe(reply.stream.data[:3] if reply.stream else None),
           finding="a /responses stream without events")
    return reply, read_events(reply.events)


def _judge(problems, expected):
    with clauses() as soft:
        for problem in problems:
            soft.expect(False, expected, problem.message, finding=problem.finding)


@check(id="responses.events.order", level=Level.MUST, feature="responses.events", clause="stream.responses",
       modes=STREAM, since="0.2.0",
       info=("An event that is emitted when a response is created.", "Emitted when a new output item is added.",
             "Emitted when the model response is complete."))
def test_event_order(api):
    """The events follow OpenAI's grammar: response.created first; each output item added, its
    content parts added, their deltas, done text, parts done, the item done; one terminal event
    (completed, incomplete or failed) last, carrying the response with that status."""
    _, view = streamed(api)
    _judge(view.order, "the events in OpenAI's order")


@check(id="responses.events.sequence-number", level=Level.MUST, feature="responses.events",
       clause="stream.responses", modes=STREAM, since="0.2.0", info="The sequence number for this event.")
def test_sequence_number(api):
    """Every event carries an integer sequence_number, strictly increasing through the stream."""
    _, view = streamed(api)
    _judge(view.sequence, "an integer sequence_number on every event, strictly increasing")


@check(id="responses.events.text-accumulates", level=Level.MUST, feature="responses.events",
       clause="stream.responses", modes=STREAM, since="0.2.0",
       info=("Emitted when there is an additional text delta.", "Emitted when text content is finalized."))
def test_text_accumulates(api):
    """The output_text deltas of a part join to its output_text.done text, which is the part's text
    in content_part.done, the item's in output_item.done, and the final response's output."""
    _, view = streamed(api)
    _judge(view.text, "the deltas to join to the done text and the final output")


@check(id="responses.events.named-by-type", level=Level.SHOULD, feature="responses.events",
       clause="stream.responses", modes=STREAM, since="0.2.0", info=not_in_openai(OPEN_RESPONSES))
def test_named_by_type(api):
    """Every event has an SSE `event:` line naming its type, as OpenAI sends them."""
    reply, _ = streamed(api)
    names = reply.stream.event_types
    data = reply.stream.data
    with clauses() as soft:
        for number, (name, payload) in enumerate(zip(names, data)):
            if payload == "[DONE]":
                continue
            try:
                kind = json.loads(payload).get("type")
            except (ValueError, AttributeError):
                continue
            # An event without an `event:` line is a "message" event (the event-stream standard's default).
            unnamed = name in (None, "message")
            soft.expect(not unnamed, f"an `event: {kind}` line", f"event {number} without one",
                        key="named", finding="events without an `event:` line")
            soft.expect(unnamed or name == kind, f"`event: {kind}` for a {kind} event",
                        f"`event: {name}` on event {number}", key="mismatch",
                        finding="the `event:` name differs from the event's type")


@check(id="responses.events.final-equals-regular", level=Level.MUST, feature="responses.events",
       clause="stream.responses", modes=STREAM, since="0.2.0",
       info="If set to true, the model response data will be streamed to the client as it is generated using "
            "[server-sent events](https://developer.mozilla.org/en-US/docs/Web/API/Server-sent_events/"
            "Using_server-sent_events#Event_stream_format).")
def test_final_equals_regular(api):
    """At temperature 0 a streamed response ends as the same request answered at once: the same
    status, and the deltas spell the same text."""
    require_endpoint(api, "responses")
    body = {"input": REPEATING_PROMPT}
    base = greedy_baseline(api, "responses", body, MIN_OUTPUT_TOKENS)
    # Drift can move one stream off the greedy path: a stream that matches is sought in a few tries.
    replies, greedy = until_greedy_related(
        api, "responses", body, MIN_OUTPUT_TOKENS,
        lambda: streamed(api, {**body, "temperature": 0, "max_output_tokens": MIN_OUTPUT_TOKENS}, "stream")[0],
        lambda r, text: read_events(r.events).joined_text == text)
    reply = replies[-1]
    joined = read_events(reply.events).joined_text
    if joined != greedy:
        require_repeatable_greedy(api, "responses", body, MIN_OUTPUT_TOKENS, len(replies))
    status, once = (reply.response or {}).get("status"), (base.response or {}).get("status")
    with clauses() as soft:
        soft.expect(status == once, f"the stream to end with status {describe(once)}, as answered at once",
                    describe(status), finding="a stream ends with another status than the same request answered "
                                              "at once")
        soft.expect(joined == greedy, f"the deltas to spell the text answered at once, {greedy[:80]!r}, in some of "
                                      f"{len(replies)} tries", describe(joined), how_text_differs(joined, greedy,
                                                                                                  "that text"),
                    finding="a stream's text differs from the same request answered at once")


FORCED = {"input": "Say hello.", "tools": [{"type": "function", **WEATHER, "strict": True}],
          "tool_choice": {"type": "function", "name": WEATHER["name"]}, "max_output_tokens": 200, "temperature": 0}


@check(id="responses.events.function-call-arguments", level=Level.MUST, feature="responses.events",
       clause="stream.responses", modes=STREAM, since="0.2.0",
       info=("Emitted when there is a partial function-call arguments delta.",
             "Emitted when function-call arguments are finalized."))
def test_function_call_arguments(api):
    """A streamed function call's argument deltas join to the arguments of
    function_call_arguments.done and of the item done, JSON valid against the strict tool's schema."""
    reply, view = streamed(api, FORCED, "tool_choice")
    calls = [t for t in view.items if t.added.get("type") == "function_call"]
    expect(calls, "a function_call item forced by tool_choice", f"items {[t.added.get('type') for t in view.items]}",
           finding="a forced function call streamed without a function_call item")
    _judge(view.arguments, "the argument deltas to join to the done arguments")
    problems = json_problems((calls[0].done or {}).get("arguments"), WEATHER["parameters"])
    expect(not problems, "arguments valid against the strict tool's schema", "; ".join(problems),
           finding="strict function arguments that break the schema")
