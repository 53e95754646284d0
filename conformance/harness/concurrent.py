"""Requests in flight together, as an application with concurrent users sends them."""

from __future__ import annotations

import threading
import time

from ..vocabulary import Mode
from ..wire.client import Api, Reply

POLL_SECONDS = 0.002


def streams_side_by_side(api: Api, endpoint: str, first: dict, second: dict) -> tuple[Reply, Reply, bool]:
    """Two streamed requests: the second sent once the first's first event has arrived, then both read to
    their end side by side. Returns both replies, and whether the first was still being read when the
    second was sent (else they did not overlap, and what they show is two requests one after the other).

    Neither is answered from another instance's answer (`fresh`): what is judged is how the target
    serves them together."""
    outcome: dict = {}
    before = len(api.evidence.exchanges)

    def read_first() -> None:
        try:
            outcome["reply"] = api.create(endpoint, first, mode=Mode.STREAM, fresh=True)
        except BaseException as exc:  # noqa: BLE001 - raised again in the check's own thread
            outcome["error"] = exc

    thread = threading.Thread(target=read_first, name="first-stream", daemon=True)
    thread.start()
    waited = time.monotonic()
    while thread.is_alive() and time.monotonic() - waited < api.runtime.timeout.read:
        sent = api.evidence.exchanges[before:before + 1]
        if sent and any(b"data" in read for read in sent[0].reads):
            break
        time.sleep(POLL_SECONDS)
    overlapped = thread.is_alive()
    second_reply = api.create(endpoint, second, mode=Mode.STREAM, fresh=True)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["reply"], second_reply, overlapped
