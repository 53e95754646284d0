"""A strict parser for `text/event-stream` bodies, following the WHATWG event-stream rules.

Lines end in CRLF, LF or CR; lines starting with ':' are comments; `data` fields of one event
join with '\\n'; an event is dispatched on a blank line; a final event without its blank
line is discarded (and reported, since OpenAI always terminates its events).  Bytes may
arrive split anywhere, including between a CR and its LF, and inside a UTF-8 sequence.
"""

from __future__ import annotations

import codecs
import dataclasses
import re

_LINE_END = re.compile(r"\r\n|\r|\n")


class StreamSyntaxError(ValueError):
    """The bytes are not a valid event stream (e.g. invalid UTF-8)."""


@dataclasses.dataclass
class Event:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


@dataclasses.dataclass
class ParsedStream:
    events: list[Event]
    comments: list[str]
    unterminated: str | None  # the text of a last event that never got its blank line


class EventStreamParser:
    """Feed bytes with `feed`; take dispatched events from its return value; then `close`."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buffer = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event_type = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._raw_event: list[str] = []  # the lines of the event being read, for error reports
        self._first = True
        self.comments: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise StreamSyntaxError(f"event stream is not valid UTF-8: {exc}") from None
        return self._feed_text(text)

    def _feed_text(self, text: str) -> list[Event]:
        if self._first and text:
            text = text.removeprefix("\ufeff")
            self._first = False
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across reads
        self._pending_cr = False
        self._buffer += text
        events: list[Event] = []
        start = 0
        buf = self._buffer
        # Each line end found by the regular expression, not by a walk over every character: CRLF is
        # one line end, a CR or an LF alone another; a CR last in the buffer may be half a CRLF.
        for end in _LINE_END.finditer(buf):
            if end.group() == "\r" and end.end() == len(buf):
                self._pending_cr = True
            event = self._process_line(buf[start:end.start()])
            if event is not None:
                events.append(event)
            start = end.end()
        self._buffer = buf[start:]
        return events

    def _process_line(self, line: str) -> Event | None:
        if line == "":
            self._raw_event = []
            return self._dispatch()
        self._raw_event.append(line)
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        field, sep, value = line.partition(":")
        if sep:
            value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event_type = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isdigit():
                self._retry = int(value)
        # other field names are ignored, as the standard says
        return None

    def _dispatch(self) -> Event | None:
        has_data = bool(self._data)
        event = None
        if has_data:
            event = Event(
                data="\n".join(self._data),
                event=self._event_type or "message",
                id=self._last_id,
                retry=self._retry,
            )
        self._data = []
        self._event_type = ""
        return event

    def close(self) -> str | None:
        """Finish the stream; returns the text of an unterminated last event, if any."""
        try:
            tail = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise StreamSyntaxError(f"event stream ends inside a UTF-8 sequence: {exc}") from None
        self._feed_text(tail)
        lines = self._raw_event + ([self._buffer] if self._buffer else [])
        if any(not line.startswith(":") for line in lines):
            return "\n".join(lines)
        return None


def parse_event_stream(chunks: list[bytes] | bytes) -> ParsedStream:
    """Parse a whole body given as one bytes object or as the list of reads it came in."""
    if isinstance(chunks, (bytes, bytearray)):
        chunks = [bytes(chunks)]
    parser = EventStreamParser()
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    unterminated = parser.close()
    return ParsedStream(events=events, comments=parser.comments, unterminated=unterminated)
