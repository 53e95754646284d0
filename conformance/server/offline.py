"""The reference server answering without a socket: a request's bytes in; out, every write its
handler made (the status line and headers, each body chunk) and whether it dropped the connection.

The same handler serves it as over the network (server/http.py), quirks and all, so what comes out
is what a client would have read, write by write. Ids, times and unseeded sampling are drawn from
`Pinned(seed)` (server/entropy.py) and the Date header is fixed: one request answered twice with
one seed gives the same bytes, and a plain and a quirked server answering it differ only where the
quirk changes the answer. The pruned self-test (conformance/selftest) compares answers this way.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import socket
from typing import Iterable

from .entropy import Pinned
from .http import DEFAULT_MODELS, Handler, Server
from .model import ToyModel
from .quirks import Layer

OFFLINE_KEY = "offline-key"  # the server's key; a request sent with "the run's key" carries it
OTHER_KEY = "offline-other-key"  # stands for any other key, which the record kept redacted
FIXED_DATE = "Sat, 01 Jan 2000 00:00:00 GMT"


@dataclasses.dataclass(frozen=True)
class Request:
    """A request as a run's record keeps it (wire/transport.py, Exchange.credential)."""

    method: str
    path: str  # from the server's root, with the query: /v1/chat/completions
    credential: str  # "absent", "key", or the Authorization header as redacted
    body: str

    def raw(self) -> bytes:
        body = self.body.encode("utf-8")
        lines = [f"{self.method} {self.path} HTTP/1.1", "Host: offline", "Content-Type: application/json"]
        if self.credential == "key":
            lines.append(f"Authorization: Bearer {OFFLINE_KEY}")
        elif self.credential != "absent":
            lines.append("Authorization: " + self.credential.replace("[REDACTED]", OTHER_KEY))
        if body or self.method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclasses.dataclass(frozen=True)
class Answered:
    writes: tuple[bytes, ...]
    dropped: bool = False  # a TCP reset instead of (the rest of) an answer
    crashed: str | None = None  # the handler raised: a real server would have cut the connection
    sampled: bool = dataclasses.field(default=False, compare=False)  # drawn from an unseeded sample


class _Connection:
    """Stands for the accepted socket: the request to read, the writes and a reset recorded."""

    def __init__(self, raw: bytes):
        self._raw = raw
        self.writes: list[bytes] = []
        self.dropped = False

    def makefile(self, mode: str, buffering: int | None = None) -> io.BytesIO:
        return io.BytesIO(self._raw)

    def sendall(self, data) -> None:
        self.writes.append(bytes(data))

    def setsockopt(self, level: int, option: int, value) -> None:
        if option == socket.SO_LINGER:  # how Handler._drop_connection resets a connection
            self.dropped = True

    def settimeout(self, value) -> None:
        pass

    def close(self) -> None:
        pass


class _OfflineHandler(Handler):
    def date_time_string(self, timestamp=None) -> str:
        return FIXED_DATE


class OfflineServer:
    """A reference server with these quirks that answers `Request`s in this thread, one at a time.

    `models`: the toy models by name, and `generations`: what was generated, both of which offline
    servers may share. A model is a function of its name, and a generation a function of the
    behaviour (server/behaviour.py), the request as the generator gets it and the seed: most quirks
    change neither, so most of their answers are rendered from a generation made once."""

    def __init__(self, quirks: Iterable[str] = (), models: dict[str, ToyModel] | None = None,
                 generations: dict | None = None):
        models = models if models is not None else {name: ToyModel(name) for name in DEFAULT_MODELS}
        self.layer = Layer(quirks)
        self._server = Server(("127.0.0.1", 0), (OFFLINE_KEY,), tuple(models), self.layer, False, listen=False,
                              toy_models=models)
        self._server.created = Pinned.CREATED
        generator = self._server.generator
        self._entropy = Pinned("")
        self._generations = generations if generations is not None else {}
        if generator.drift is None:  # drift counts the requests that came before: never the same twice
            self._generate, generator.generate = generator.generate, self._generate_once

    def _generate_once(self, endpoint: str, request: dict):
        entropy = self._entropy
        if entropy.drawn:
            return self._generate(endpoint, request)
        key = (self.layer.behaviour, endpoint, json.dumps(request, sort_keys=True, default=repr), entropy.seed)
        made = self._generations.get(key)
        if made is None:
            result = self._generate(endpoint, request)  # a refusal (ApiError) is raised, not kept
            made = self._generations[key] = (pickle.dumps(result), entropy.state())
        entropy.restore(made[1])
        return pickle.loads(made[0])  # a copy: a quirk may change what it is given

    def answer(self, request: Request, seed: str) -> Answered:
        self._entropy = entropy = Pinned(seed)
        self._server.generator.entropy = self._server.responses.entropy = entropy
        connection = _Connection(request.raw())
        crashed = None
        try:
            _OfflineHandler(connection, ("127.0.0.1", 0), self._server)
        except Exception as exc:  # noqa: BLE001 - what the socket server would have logged, as an answer
            crashed = f"{type(exc).__name__}: {exc}"
        return Answered(tuple(connection.writes), connection.dropped, crashed, entropy.sampled)

    def close(self) -> None:
        self._server.server_close()
