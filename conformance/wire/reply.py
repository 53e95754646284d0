"""What a check reads: a `Reply` (status, error envelope, choices, usage, stream events), the same
for both paths, and how it is read from a body or an event stream.

A /responses reply is a Reply too: its `response` is the Response object (the body, or the one
the stream's terminal event carries), its `events` the stream's typed events (events.py reads
their grammar), and its `choices` the one choice a Response stands for, so that the oracles
written for chat (text, finish, tool calls) read it: a message's text, `length` where the
response is incomplete at max_output_tokens, its function_call items as tool calls."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .sse import StreamSyntaxError, parse_event_stream
from .transport import Exchange


@dataclasses.dataclass
class ChoiceView:
    index: int
    text: str
    finish_reason: str | None
    role: str | None = None
    finish_reasons_seen: int = 0  # streams: how many chunks carried a finish_reason
    roles_seen: int = 0  # streams: how many deltas carried a role
    # message.tool_calls as sent, or (streams) joined from the deltas by their index
    tool_calls: list[dict] = dataclasses.field(default_factory=list)
    function_call: dict | None = None  # the deprecated form, likewise


@dataclasses.dataclass
class StreamView:
    """What a strict reading of the raw event-stream bytes found."""

    content_type: str
    data: list[str]  # the data of each event, in order
    event_types: list[str]
    chunks: list[dict]  # the JSON chunks (events other than [DONE])
    done: bool  # a `data: [DONE]` event was seen
    events_after_done: int
    problems: list[str]  # syntax errors, non-JSON data, unterminated events


@dataclasses.dataclass
class Reply:
    endpoint: str
    mode: str
    path: str
    status: int | None
    exchange: Exchange | None
    body: Any = None  # the parsed JSON body of a regular (or error) response
    stream: StreamView | None = None
    chunks: list[dict] = dataclasses.field(default_factory=list)  # as the path parsed them
    sdk_error: str | None = None
    defect: str | None = None  # a body that could not be read at all (e.g. a false Content-Encoding)
    limit_passed: str | None = None  # the length limit a stream certainly ran past (the suite stopped reading)

    @property
    def ok(self) -> bool:
        return (self.status is not None and 200 <= self.status < 300 and self.sdk_error is None
                and self.defect is None)

    @property
    def error(self) -> dict | None:
        """The `error` object of OpenAI's envelope, when the body has one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"]
        return None

    @property
    def events(self) -> list[dict]:
        """The typed events of a streamed /responses answer (its chunks)."""
        return self.chunks

    @property
    def response(self) -> dict | None:
        """A /responses answer's Response object: the body, or the response its stream ended with."""
        if self.mode != "stream":
            return self.body if isinstance(self.body, dict) and self.error is None else None
        ended = [e.get("response") for e in self.chunks if e.get("type") in RESPONSE_TERMINAL]
        return ended[-1] if ended and isinstance(ended[-1], dict) else None

    @property
    def choices(self) -> list[ChoiceView]:
        if self.endpoint == "responses":
            return choices_from_response(self.response)
        if self.mode == "stream":
            return aggregate_chunks(self.endpoint, self.chunks)
        return choices_from_body(self.endpoint, self.body)

    @property
    def usage(self) -> dict | None:
        if self.endpoint == "responses":
            usage = (self.response or {}).get("usage")
            return usage if isinstance(usage, dict) else None
        if self.mode == "stream":
            with_usage = [c["usage"] for c in self.chunks if isinstance(c.get("usage"), dict)]
            return with_usage[-1] if with_usage else None
        return self.body.get("usage") if isinstance(self.body, dict) else None

    @property
    def text(self) -> str:
        choices = self.choices
        return choices[0].text if choices else ""

    @property
    def finish_reason(self) -> str | None:
        choices = self.choices
        return choices[0].finish_reason if choices else None

    def describe(self) -> str:
        """A one-line account of the response, for messages."""
        if self.status is None:
            return "no response"
        if self.sdk_error:
            return f"HTTP {self.status}, the SDK raised {self.sdk_error}"
        if self.defect:
            return f"HTTP {self.status}, {self.defect}"
        if not self.ok:
            err = self.error
            if err:
                return f"HTTP {self.status} {err.get('message', '')!r}"
            raw = self.exchange.body[:200].decode("utf-8", "replace") if self.exchange else ""
            return f"HTTP {self.status} {raw!r}"
        return f"HTTP {self.status}"


def _content_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return ""


RESPONSE_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def response_text(response: dict | None) -> str:
    """What the SDK's `output_text` is: the text of every output_text part of every message, joined."""
    return "".join(part.get("text") or "" for item in (response or {}).get("output") or []
                   if isinstance(item, dict) and item.get("type") == "message"
                   for part in item.get("content") or [] if isinstance(part, dict) and part.get("type") == "output_text")


def choices_from_response(response: dict | None) -> list[ChoiceView]:
    """The one choice a Response stands for (none when there is no response)."""
    if not isinstance(response, dict) or not isinstance(response.get("output"), list):
        return []
    items = [i for i in response["output"] if isinstance(i, dict)]
    calls = [{"id": i.get("call_id"), "type": "function", "function": {"name": i.get("name"),
                                                                       "arguments": i.get("arguments")}}
             for i in items if i.get("type") == "function_call"]
    status = response.get("status")
    reason = (response.get("incomplete_details") or {}).get("reason") if status == "incomplete" else None
    finish = ("length" if reason == "max_output_tokens" else "content_filter" if reason == "content_filter"
              else "tool_calls" if calls else "stop" if status == "completed" else status)
    roles = [i.get("role") for i in items if i.get("type") == "message"]
    return [ChoiceView(0, response_text(response), finish, roles[0] if roles else "assistant" if calls else None,
                       tool_calls=calls)]


def choices_from_body(endpoint: str, body: Any) -> list[ChoiceView]:
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        return []
    views = []
    for position, choice in enumerate(body["choices"]):
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", position)
        if endpoint == "chat":
            message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
            calls = message.get("tool_calls")
            function_call = message.get("function_call")
            views.append(ChoiceView(index, _content_of(message), choice.get("finish_reason"), message.get("role"),
                                    tool_calls=[c for c in calls if isinstance(c, dict)] if isinstance(calls, list)
                                    else [],
                                    function_call=function_call if isinstance(function_call, dict) else None))
        else:
            text = choice.get("text") if isinstance(choice.get("text"), str) else ""
            views.append(ChoiceView(index, text, choice.get("finish_reason")))
    return views


def aggregate_chunks(endpoint: str, chunks: list[dict]) -> list[ChoiceView]:
    """Join the deltas of each choice, in order of the index they carry."""
    views: dict[int, ChoiceView] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            view = views.setdefault(index, ChoiceView(index, "", None))
            if endpoint == "chat":
                delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
                if isinstance(delta.get("content"), str):
                    view.text += delta["content"]
                if delta.get("role") is not None:
                    view.roles_seen += 1
                    view.role = view.role or delta["role"]
                _join_call_deltas(view, delta)
            elif isinstance(choice.get("text"), str):
                view.text += choice["text"]
            if choice.get("finish_reason") is not None:
                view.finish_reasons_seen += 1
                view.finish_reason = choice["finish_reason"]
    return [views[i] for i in sorted(views, key=lambda k: (not isinstance(k, int), k))]


def _join_fields(target: dict, fragment: dict) -> None:
    """id, type and name from the first fragment that has them; arguments fragments concatenated."""
    for key, value in fragment.items():
        if key == "arguments" and isinstance(value, str):
            target["arguments"] = target.get("arguments", "") + value
        elif key in ("id", "type", "name") and value is not None and target.get(key) is None:
            target[key] = value


def _join_call_deltas(view: ChoiceView, delta: dict) -> None:
    """Fold the tool-call (or function_call) fragments of one delta into the calls built so far."""
    for part in delta.get("tool_calls") or []:
        if not isinstance(part, dict):
            continue
        index = part.get("index")
        if not isinstance(index, int):  # no index: a new call when it carries an id, else the last one
            index = len(view.tool_calls) if part.get("id") or not view.tool_calls else len(view.tool_calls) - 1
        while len(view.tool_calls) <= index:
            view.tool_calls.append({})
        call = view.tool_calls[index]
        _join_fields(call, part)
        if isinstance(part.get("function"), dict):
            _join_fields(call.setdefault("function", {}), part["function"])
    if isinstance(delta.get("function_call"), dict):
        view.function_call = {} if view.function_call is None else view.function_call
        _join_fields(view.function_call, delta["function_call"])


def read_stream(exchange: Exchange) -> StreamView:
    content_type = exchange.response_headers.get("content-type", "")
    problems: list[str] = []
    try:
        parsed = parse_event_stream(exchange.reads)
        events = parsed.events
        if parsed.unterminated is not None:
            problems.append(f"the stream ends inside an event (no blank line after it): {parsed.unterminated[:120]!r}")
    except StreamSyntaxError as exc:
        events = []
        problems.append(str(exc))
    chunks: list[dict] = []
    done = False
    after_done = 0
    for number, event in enumerate(events, 1):
        if done:
            after_done += 1
            continue
        if event.data == "[DONE]":
            done = True
            continue
        try:
            value = json.loads(event.data)
        except ValueError:
            problems.append(f"event {number} is not JSON: {event.data[:120]!r}")
            continue
        if isinstance(value, dict):
            chunks.append(value)
        else:
            problems.append(f"event {number} is JSON but not an object: {event.data[:120]!r}")
    return StreamView(content_type, [e.data for e in events], [e.event for e in events], chunks, done, after_done,
                      problems)
