"""How many requests a live target really serves at once, measured before a run.

Many self-hosted servers answer one request at a time (Ollama's default, a one-slot llama-server,
the Python servers built on llama.cpp's bindings). Sent four at a time, requests queue behind each
other's generations, wait past the read timeout, and come back as errors that say nothing about
the target's conformance. So before a run that chooses its own workers, the suite times one short
generation, then the same `wanted` at once: a server that serves them in parallel ends them
together, a serial one takes `wanted` times as long. The estimate is the workers the run gets.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time

import httpx2

FAST_ENOUGH_SECONDS = 0.05  # shorter than this, one timing says little: the batch is timed twice
PROBE = {"messages": [{"role": "user", "content": "Count from one to twenty."}], "max_tokens": 16,
         "temperature": 0}


@dataclasses.dataclass(frozen=True)
class Capacity:
    slots: int  # requests the target serves at once (at most `wanted`)
    single_seconds: float
    together_seconds: float | None  # `wanted` requests sent at once, None when not measured
    wanted: int

    def line(self) -> str:
        if self.together_seconds is None:
            return (f"the target answers a short generation in {self.single_seconds * 1000:.0f} ms: "
                    f"{self.wanted} worker(s)")
        return (f"the target answered {self.wanted} requests sent at once in {self.together_seconds:.2f}s, one in "
                f"{self.single_seconds:.2f}s: it serves about {self.slots} at a time, so {self.slots} worker(s) "
                "(set [limits] concurrency in the target file to choose)")


def measure(base_url: str, api_key: str, model: str, wanted: int, timeout: float = 120.0,
            headers: dict | None = None, chat: bool = True) -> Capacity | None:
    """The target's capacity, or None when the probe itself failed (the run then says why);
    `chat`: probe /chat/completions, else /completions."""
    url = base_url.rstrip("/") + ("/chat/completions" if chat else "/completions")
    sent_headers = {"Authorization": f"Bearer {api_key}", **(headers or {})}
    body = {**PROBE, "model": model} if chat else {"prompt": PROBE["messages"][0]["content"], "model": model,
                                                   "max_tokens": PROBE["max_tokens"], "temperature": 0}
    with httpx2.Client(timeout=timeout, headers=sent_headers, follow_redirects=False) as client:
        def one(wait: float = timeout) -> float:
            started = time.monotonic()
            response = client.post(url, json=body, timeout=wait)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}")
            return time.monotonic() - started

        def at_once() -> float:
            started = time.monotonic()
            queued = timeout + 2 * wanted * single  # served one after the other, the last waits for all
            with concurrent.futures.ThreadPoolExecutor(wanted) as pool:
                list(pool.map(lambda _: one(queued), range(wanted)))
            return time.monotonic() - started

        try:
            single = min(one(), one())  # the first may pay for a cold start
            if wanted <= 1:
                return Capacity(wanted, single, None, wanted)
            # Twice, the faster kept: a fast server's few milliseconds are noisy on a busy machine.
            together = min(at_once(), at_once()) if single < FAST_ENOUGH_SECONDS else at_once()
        except (httpx2.HTTPError, RuntimeError):
            return None
    # A parallel server ends them about together; a serial one takes `wanted` times as long.
    slots = max(1, min(wanted, int(wanted * single / together + 0.5)))
    return Capacity(slots, single, together, wanted)
