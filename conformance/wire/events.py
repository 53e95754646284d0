"""The event grammar of a streamed /responses answer, read strictly: what a check of the stream
judges, clause by clause.

OpenAI streams a response as typed events (components.schemas.ResponseStreamEvent): the
response's lifecycle (`response.created`, `response.in_progress`, then one of
`response.completed`, `response.incomplete`, `response.failed`), and inside it each output item
(`response.output_item.added` ... `response.output_item.done`), each content part of a message
(`response.content_part.added` ... `.done`) and its text (`response.output_text.delta`...,
`response.output_text.done`), or a function call's arguments
(`response.function_call_arguments.delta`..., `.done`).  `read_events` walks the events once as
that grammar and lists, per clause, what breaks it, each problem with the finding the report
groups it by (conformance.harness.checks.Deviation).  Events of types it does not know (a
reasoning summary, an extension `acme:trace`) are legal and skipped: clients must ignore them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

LIFECYCLE_START = ("response.created", "response.queued", "response.in_progress")
TERMINAL = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}
ITEM_SCOPED = ("response.content_part.added", "response.content_part.done", "response.output_text.delta",
               "response.output_text.done", "response.refusal.delta", "response.refusal.done",
               "response.function_call_arguments.delta", "response.function_call_arguments.done",
               "response.output_text.annotation.added")


@dataclasses.dataclass(frozen=True)
class Problem:
    message: str  # what came back, where: "event 4 (response.output_text.delta) comes before ..."
    finding: str  # the difference in a reader's words, the same wherever it is seen


@dataclasses.dataclass
class ItemTrack:
    """What the events said of one output item, in order."""

    output_index: int
    added: dict
    done: dict | None = None
    text: dict[int, str] = dataclasses.field(default_factory=dict)  # content_index -> deltas joined
    text_done: dict[int, str] = dataclasses.field(default_factory=dict)
    parts_added: list[int] = dataclasses.field(default_factory=list)
    parts_done: dict[int, dict] = dataclasses.field(default_factory=dict)
    arguments: str = ""
    arguments_done: dict | None = None


@dataclasses.dataclass
class EventsView:
    """The events read as the grammar: the problems of each clause, and what was built."""

    events: list[dict]
    order: list[Problem] = dataclasses.field(default_factory=list)  # lifecycle, item and part nesting
    sequence: list[Problem] = dataclasses.field(default_factory=list)  # sequence_number
    text: list[Problem] = dataclasses.field(default_factory=list)  # deltas -> done -> item -> final
    arguments: list[Problem] = dataclasses.field(default_factory=list)  # function-call argument deltas
    items: list[ItemTrack] = dataclasses.field(default_factory=list)
    terminal: dict | None = None  # the terminal event
    final: dict | None = None  # the response it carries

    @property
    def joined_text(self) -> str:
        """Every message's text deltas joined, in output order (what a client printing deltas shows)."""
        return "".join(t.text.get(j, "") for t in self.items if t.added.get("type") == "message"
                       for j in sorted(t.text))


def _where(number: int, event: dict) -> str:
    return f"event {number} ({event.get('type')})"


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _message_text(item: dict | None, content_index: int) -> Any:
    content = (item or {}).get("content")
    if not isinstance(content, list) or content_index >= len(content) or not isinstance(content[content_index], dict):
        return None
    return content[content_index].get("text")


def read_events(events: list[dict]) -> EventsView:
    view = EventsView(events)
    _read_sequence(view)
    tracks: dict[int, ItemTrack] = {}
    by_id: dict[str, ItemTrack] = {}
    started = False
    for number, event in enumerate(events):
        kind = event.get("type")
        if view.terminal is not None:
            view.order.append(Problem(f"{_where(number, event)} comes after the terminal event "
                                      f"{view.terminal.get('type')}", "events after the response ended"))
            continue
        if number == 0 and kind != "response.created":
            view.order.append(Problem(f"the first event is {kind!r}, not 'response.created'",
                                      "the stream does not begin with response.created"))
        if kind in LIFECYCLE_START:
            if started and kind == "response.created":
                view.order.append(Problem(f"{_where(number, event)} repeats", "response.created sent twice"))
            started = True
            continue
        if kind in TERMINAL:
            view.terminal = event
            response = event.get("response")
            view.final = response if isinstance(response, dict) else None
            continue
        if kind == "response.output_item.added":
            _item_added(view, number, event, tracks, by_id)
        elif kind == "response.output_item.done":
            _item_done(view, number, event, tracks)
        elif kind in ITEM_SCOPED:
            _item_event(view, number, event, tracks, by_id)
    if view.terminal is None:
        view.order.append(Problem("no terminal event (response.completed, response.incomplete or response.failed) "
                                  "ends the stream", "the stream ends without response.completed (or incomplete, "
                                                     "failed)"))
    view.items = [tracks[i] for i in sorted(tracks)]
    for track in view.items:
        if track.done is None:
            view.order.append(Problem(f"output item {track.output_index} was added and never done",
                                      "an output item without response.output_item.done"))
    _read_final(view)
    return view


def _read_sequence(view: EventsView) -> None:
    last = None
    for number, event in enumerate(view.events):
        value = event.get("sequence_number")
        if not _int(value):
            view.sequence.append(Problem(f"{_where(number, event)} has sequence_number {json.dumps(value)}"
                                         if "sequence_number" in event else
                                         f"{_where(number, event)} has no sequence_number",
                                         "events without an integer sequence_number"))
            return
        if last is not None and value <= last:
            view.sequence.append(Problem(f"{_where(number, event)} has sequence_number {value} after {last}",
                                         "sequence_number not strictly increasing"))
            return
        last = value


def _item_added(view: EventsView, number: int, event: dict, tracks: dict, by_id: dict) -> None:
    index, item = event.get("output_index"), event.get("item")
    if not _int(index) or not isinstance(item, dict):
        view.order.append(Problem(f"{_where(number, event)} has output_index {json.dumps(index)} and item "
                                  f"{type(item).__name__}", "output_item.added without output_index or item"))
        return
    if index != len(tracks):
        view.order.append(Problem(f"{_where(number, event)} adds output_index {index} where {len(tracks)} was next",
                                  "output items not numbered 0, 1, 2... in order"))
    if index in tracks:
        return
    tracks[index] = ItemTrack(index, item)
    if isinstance(item.get("id"), str):
        by_id[item["id"]] = tracks[index]


def _item_done(view: EventsView, number: int, event: dict, tracks: dict) -> None:
    index, item = event.get("output_index"), event.get("item")
    track = tracks.get(index)
    if track is None:
        view.order.append(Problem(f"{_where(number, event)} ends output_index {json.dumps(index)}, which was never "
                                  "added", "output_item.done without its output_item.added"))
        return
    if track.done is not None:
        view.order.append(Problem(f"{_where(number, event)} ends output item {index} a second time",
                                  "output_item.done sent twice"))
        return
    track.done = item if isinstance(item, dict) else {}
    if track.added.get("id") != track.done.get("id") or track.added.get("type") != track.done.get("type"):
        view.order.append(Problem(f"{_where(number, event)}: item id {track.done.get('id')!r} type "
                                  f"{track.done.get('type')!r}, where it was added as {track.added.get('id')!r} type "
                                  f"{track.added.get('type')!r}", "output_item.done names another item than added"))
    missing = [j for j in track.parts_added if j not in track.parts_done]
    if missing:
        view.order.append(Problem(f"{_where(number, event)} ends item {index} before content part {missing[0]} "
                                  "is done", "output_item.done before content_part.done"))
    if track.added.get("type") == "function_call" and track.arguments_done is None:
        view.order.append(Problem(f"{_where(number, event)} ends function call {index} without "
                                  "function_call_arguments.done", "a function call without "
                                                                  "function_call_arguments.done"))
    _judge_item(view, track)


def _item_event(view: EventsView, number: int, event: dict, tracks: dict, by_id: dict) -> None:
    kind = event["type"]
    index, item_id = event.get("output_index"), event.get("item_id")
    track = tracks.get(index)
    if track is None or track.done is not None:
        state = "never added" if track is None else "already done"
        view.order.append(Problem(f"{_where(number, event)} is about output_index {json.dumps(index)}, {state}",
                                  f"{kind.removeprefix('response.')} outside its output item"))
        return
    if by_id.get(item_id) is not track:
        view.order.append(Problem(f"{_where(number, event)} has item_id {json.dumps(item_id)}, where output item "
                                  f"{index} is {track.added.get('id')!r}", "item_id does not match the output item"))
    j = event.get("content_index")
    if kind == "response.content_part.added":
        if j != len(track.parts_added):
            view.order.append(Problem(f"{_where(number, event)} adds content_index {json.dumps(j)} where "
                                      f"{len(track.parts_added)} was next", "content parts not numbered in order"))
        track.parts_added.append(j)
        track.text[j] = ""
    elif kind == "response.content_part.done":
        if j not in track.parts_added:
            view.order.append(Problem(f"{_where(number, event)} ends content part {json.dumps(j)}, never added",
                                      "content_part.done without content_part.added"))
        elif j not in track.text_done and track.added.get("type") == "message":
            view.order.append(Problem(f"{_where(number, event)} ends content part {j} before its "
                                      "output_text.done", "content_part.done before output_text.done"))
        track.parts_done[j] = event.get("part") if isinstance(event.get("part"), dict) else {}
    elif kind in ("response.output_text.delta", "response.output_text.done"):
        if j not in track.parts_added or j in track.parts_done:
            view.order.append(Problem(f"{_where(number, event)} is about content part {json.dumps(j)}, "
                                      f"{'never added' if j not in track.parts_added else 'already done'}",
                                      "output_text events outside their content part"))
            return
        if j in track.text_done:
            view.order.append(Problem(f"{_where(number, event)} comes after output_text.done of that part",
                                      "output_text events after output_text.done"))
            return
        if kind.endswith(".delta"):
            delta = event.get("delta")
            if not isinstance(delta, str):
                view.text.append(Problem(f"{_where(number, event)} has delta {json.dumps(delta)[:60]}, not a string",
                                         "output_text.delta without a string delta"))
                return
            track.text[j] = track.text.get(j, "") + delta
        else:
            track.text_done[j] = event.get("text")
    elif kind == "response.function_call_arguments.delta":
        if track.arguments_done is not None:
            view.order.append(Problem(f"{_where(number, event)} comes after function_call_arguments.done",
                                      "argument deltas after function_call_arguments.done"))
        elif isinstance(event.get("delta"), str):
            track.arguments += event["delta"]
    elif kind == "response.function_call_arguments.done":
        track.arguments_done = event


def _judge_item(view: EventsView, track: ItemTrack) -> None:
    """Deltas joined == the done text == the part done == the item done (and arguments likewise)."""
    item = track.done or {}
    if track.added.get("type") == "message":
        for j in track.parts_added:
            joined, done = track.text.get(j, ""), track.text_done.get(j)
            stages = (("output_text.done's text", done), ("content_part.done's part.text",
                                                          (track.parts_done.get(j) or {}).get("text")),
                      ("output_item.done's content text", _message_text(item, j)))
            for name, value in stages:
                if value != joined:
                    view.text.append(Problem(f"item {track.output_index} part {j}: the deltas join to "
                                             f"{joined[:60]!r}, {name} is {json.dumps(value)[:80]}",
                                             f"text deltas do not join to {name.split(chr(39))[0]}"))
                    break
    elif track.added.get("type") == "function_call":
        done = (track.arguments_done or {}).get("arguments")
        for name, value in (("function_call_arguments.done's arguments", done),
                            ("output_item.done's arguments", item.get("arguments"))):
            if value != track.arguments:
                view.arguments.append(Problem(f"function call {track.output_index}: the argument deltas join to "
                                              f"{track.arguments[:60]!r}, {name} is {json.dumps(value)[:80]}",
                                              f"argument deltas do not join to {name.split(chr(39))[0]}"))
                break


def _read_final(view: EventsView) -> None:
    """The terminal event's response: its status is the event's, its output the items done."""
    if view.terminal is None:
        return
    kind = view.terminal.get("type")
    final = view.final or {}
    if final.get("status") != TERMINAL[kind]:
        view.order.append(Problem(f"{kind} carries a response with status {json.dumps(final.get('status'))}",
                                  "the terminal event's response has another status"))
    output = final.get("output")
    done = [t.done for t in view.items if t.done is not None]
    if not isinstance(output, list):
        view.text.append(Problem(f"{kind} carries a response whose output is {json.dumps(output)[:60]}",
                                 "the final response has no output"))
    elif output != done:
        view.text.append(Problem(f"{kind}'s response.output ({len(output)} items) differs from the items "
                                 f"output_item.done sent ({len(done)})",
                                 "the final response's output differs from the items streamed"))
