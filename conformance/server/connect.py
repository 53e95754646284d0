"""Where a target answers: its base URL and key, starting the embedded reference server if need be."""

from __future__ import annotations

import dataclasses
import secrets

from ..config.targets import Target


@dataclasses.dataclass
class Endpoint:
    base_url: str
    api_key: str
    server: object | None = None  # the embedded ReferenceServer (or ServerProcess), when this started one

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def connect(target: Target, quirks: tuple[str, ...] = (), faults=None, request_log: str | None = None,
            latency: float = 0.0, own_process: bool = False, token_latency: float = 0.0,
            serial: bool = False) -> Endpoint:
    """The target's endpoint; for the embedded reference, a server of its own with a fresh key
    (in a thread of this process, or with `own_process` in a child process)."""
    if target.embedded:
        key = "ref-" + secrets.token_urlsafe(18)
        settings = dict(api_key=key, models=target.models, quirks=quirks, faults=faults, request_log=request_log,
                        latency=latency, token_latency=token_latency, serial=serial)
        if own_process:
            from .process import ServerProcess

            server = ServerProcess(**settings)
        else:
            from . import ReferenceServer

            server = ReferenceServer(**settings).start()
        return Endpoint(server.base_url, key, server)
    return Endpoint(target.base_url, target.api_key())
