"""Where a target answers: its base URL and key, starting the embedded reference server if need be."""

from __future__ import annotations

import dataclasses
import secrets

from .targets import Target


@dataclasses.dataclass
class Endpoint:
    base_url: str
    api_key: str
    server: object | None = None  # the embedded ReferenceServer, when this started one

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def connect(target: Target, quirks: tuple[str, ...] = (), faults=None, request_log: str | None = None,
            latency: float = 0.0) -> Endpoint:
    """The target's endpoint; for the embedded reference, a server of its own with a fresh key."""
    if target.embedded:
        from .server import ReferenceServer

        key = "ref-" + secrets.token_urlsafe(18)
        server = ReferenceServer(api_key=key, models=target.models, quirks=quirks, faults=faults,
                                 request_log=request_log, latency=latency).start()
        return Endpoint(server.base_url, key, server)
    return Endpoint(target.base_url, target.api_key())
