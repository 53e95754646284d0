"""The quirk layer: the quirks a server was given, composed into one object the server calls at
each seam (base.py lists them), the way an httpx transport wraps a client's requests.

With no quirks every seam is the identity and `behaviour` is the reference's.  Quirks apply in
the registry's order, whatever order they were named in.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import Any, Iterable

from ..behaviour import REFERENCE, Behaviour
from ..render import Chunk, Stream
from ..validate import ApiError
from .base import SEAMS, Quirk
from .declared import NAMED, VARIATIONS, parametric


@functools.cache
def _registry() -> tuple[Quirk, ...]:
    quirks = (*NAMED, *parametric(), *VARIATIONS)
    names = [q.name for q in quirks]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise TypeError(f"quirks declared twice: {', '.join(duplicated)}")
    return quirks


def registry() -> dict[str, Quirk]:
    """Every quirk and variation by name, in the registry's order."""
    return {q.name: q for q in _registry()}


def check_names(names: Iterable[str]) -> frozenset[str]:
    """The names, if every one is a quirk; else a ValueError naming the unknown ones (one line)."""
    names = frozenset(names)
    known = registry()
    unknown = sorted(names - set(known))
    if unknown:
        def hint(name: str) -> str:
            close = difflib.get_close_matches(name, known, n=1)
            return f"{name} (did you mean {close[0]}?)" if close else name
        raise ValueError(f"unknown quirk(s): {', '.join(map(hint, unknown))}; "
                         "`conformance serve --list-quirks` lists them")
    return names


def _behaviour(quirks: Iterable[Quirk]) -> Behaviour:
    fields: dict[str, Any] = {}
    for q in quirks:
        for name, value in q.behaviour.items():
            # sets (the roles a prompt leaves out) add up; any other field is set by the last quirk
            fields[name] = fields.get(name, frozenset()) | value if isinstance(value, frozenset) else value
    return dataclasses.replace(REFERENCE, **fields)


class Layer:
    """The seams of a server with these quirks (unknown names: ValueError at once)."""

    def __init__(self, names: Iterable[str] = ()):
        self.names = check_names(names)
        self.quirks = [q for q in _registry() if q.name in self.names]
        self.behaviour = _behaviour(self.quirks)
        self._at = {seam: [getattr(q, seam) for q in self.quirks if getattr(q, seam)] for seam in SEAMS}

    def request_in(self, endpoint: str, body: Any, models: tuple[str, ...]) -> Any:
        for f in self._at["request_in"]:
            body = f(endpoint, body, models)
        return body

    def request_valid(self, endpoint: str, request: dict, models: tuple[str, ...]) -> dict:
        for f in self._at["request_valid"]:
            request = f(endpoint, request, models)
        return request

    def usage_out(self, usage: dict) -> dict:
        for f in self._at["usage_out"]:
            usage = f(usage)
        return usage

    def body_out(self, kind: str, body: dict) -> dict:
        for f in self._at["body_out"]:
            body = f(kind, body)
        return body

    def chunks_out(self, stream: Stream) -> list[Chunk]:
        for f in self._at["chunks_out"]:
            stream = dataclasses.replace(stream, chunks=f(stream))
        return stream.chunks

    def events_out(self, stream: Stream) -> list[Chunk]:
        for f in self._at["events_out"]:
            stream = dataclasses.replace(stream, chunks=f(stream))
        return stream.chunks

    def frames_out(self, frames: list[str]) -> list[str]:
        for f in self._at["frames_out"]:
            frames = f(frames)
        return frames

    def writes(self, frame: bytes) -> list[bytes]:
        parts = [frame]
        for f in self._at["writes"]:
            parts = [piece for part in parts for piece in f(part)]
        return parts

    def stream_headers(self, headers: dict[str, str]) -> dict[str, str]:
        for f in self._at["stream_headers"]:
            headers = f(headers)
        return headers

    def error_out(self, status: int, body: dict) -> tuple[int, dict]:
        for f in self._at["error_out"]:
            status, body = f(status, body)
        return status, body

    def error_event(self, err: ApiError) -> str | None:
        return next((data for f in self._at["error_event"] if (data := f(err)) is not None), None)

    def raw_in(self, raw: bytes) -> None:
        for f in self._at["raw_in"]:
            f(raw)

    def drops(self, raw: bytes) -> bool:
        return any(f(raw) for f in self._at["drops"])
