"""What a quirk is: its name, what it breaks, and what it changes at which seam.

A quirk changes the reference in two ways only.  Deep inside, it sets fields of the frozen
`Behaviour` record (server/behaviour.py) that validation, generation and the HTTP side read.
Everywhere else it is a function at a seam, applied by the server around the plain reference
(server/quirks/layer.py composes them; server/http.py calls the layer):

  request_in(endpoint, body, models) -> body      the parsed body, before validation: transform it
                                                   or refuse it (raise ApiError)
  request_valid(endpoint, request, models) -> request
                                                   a valid request, before the model's existence is
                                                   checked: transform it or refuse it
  usage_out(usage) -> usage                        the usage the generator counted
  body_out(kind, body) -> body                     a regular response body; kind: chat, completions,
                                                   responses (a Response object, created or retrieved),
                                                   input_items, deleted, models (GET /v1/models),
                                                   model (GET /v1/models/{id})
  chunks_out(stream) -> [Chunk]                    the tagged chunks of a chat or completions stream
                                                   (render.Stream)
  events_out(stream) -> [Chunk]                    the events of a streamed /responses answer, each a
                                                   Chunk whose kind is the event's type
                                                   (responses_api.ResponseRenderer.events)
  frames_out([str]) -> [str]                       the SSE frames, as text
  writes(bytes) -> [bytes]                         the network writes of one frame
  stream_headers(dict) -> dict                     the headers of a streamed response
  error_out(status, body) -> (status, body)        an error in OpenAI's envelope
  error_event(ApiError) -> str | None              the data of an `event: error` frame sent, with
                                                   status 200, in place of a refused stream
  raw_in(bytes) -> None                            the request's bytes, before they are parsed
                                                   (raise ApiError to answer otherwise)
  drops(bytes) -> bool                             drop the connection instead of answering
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from ..behaviour import Behaviour

SEAMS = ("request_in", "request_valid", "usage_out", "body_out", "chunks_out", "events_out", "frames_out", "writes",
         "stream_headers", "error_out", "error_event", "raw_in", "drops")


@dataclasses.dataclass(frozen=True)
class Quirk:
    name: str
    description: str
    features: tuple[str, ...]  # matrix features (check feature ids) it breaks
    verdicts: tuple[tuple[str, str], ...] = ()  # ("chat.stop", "ignored"), ...
    variation: bool = False  # a legal variation, not a deviation
    # What it changes: Behaviour fields, and functions at the seams above.
    behaviour: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    request_in: Callable | None = dataclasses.field(default=None, compare=False)
    request_valid: Callable | None = dataclasses.field(default=None, compare=False)
    usage_out: Callable | None = dataclasses.field(default=None, compare=False)
    body_out: Callable | None = dataclasses.field(default=None, compare=False)
    chunks_out: Callable | None = dataclasses.field(default=None, compare=False)
    events_out: Callable | None = dataclasses.field(default=None, compare=False)
    frames_out: Callable | None = dataclasses.field(default=None, compare=False)
    writes: Callable | None = dataclasses.field(default=None, compare=False)
    stream_headers: Callable | None = dataclasses.field(default=None, compare=False)
    error_out: Callable | None = dataclasses.field(default=None, compare=False)
    error_event: Callable | None = dataclasses.field(default=None, compare=False)
    raw_in: Callable | None = dataclasses.field(default=None, compare=False)
    drops: Callable | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        # A declaration that names no change, or a Behaviour field that does not exist, fails at import.
        Behaviour(**self.behaviour)
        if not self.behaviour and not any(getattr(self, seam) for seam in SEAMS):
            raise TypeError(f"quirk {self.name} changes nothing")
