"""How many requests a live target really serves at once, measured before a run.

Many self-hosted servers answer one request at a time (Ollama's default, a one-slot llama-server,
the Python servers built on llama.cpp's bindings). Sent four at a time, requests queue behind each
other's generations, wait past the read timeout, and come back as errors that say nothing about
the target's conformance. So before a run that chooses its own workers, the suite times one
generation, then a few of them sent at once: a server that serves them in parallel ends them
together, a serial one takes as many times as long.

What makes the measure hold: a tiny request tells nothing. A server whose HTTP side is concurrent
and whose generations are serial answers a 16-token request in 30 ms, mostly its own overhead, and
four at once in 60 ms: "about 2 at a time" for a server that generates one at a time. So the
generation is made long enough that its serial time stands well above that noise (the length is
raised until one takes LONG_ENOUGH_SECONDS, or the model ends of its own), the batch is sent more
than once, and the estimate is taken only when two batches in a row agree, near a whole count.
When they never do, the answer is 1: a parallel server run one at a time is slow, a serial one run
four at a time is wrong.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time

import httpx2

LONG_ENOUGH_SECONDS = 0.25  # one generation at least this long, where the model lets it be
LENGTHS = (64, 256, 1024)  # max_tokens tried, shortest first
BATCHES = 3  # times requests are sent at once, at most (two in a row must agree)
MOST_AT_ONCE = 4  # requests sent at once: a server that ends four together serves as many as the run wants
CLEAR = 0.35  # an estimate within this of a whole count is that count; further, it is ambiguous
TOGETHER = 0.8  # all sent ended within 1.25 times one generation's time: served together (batching costs some)
PROMPT = "Count from one to one thousand, in words, separated by commas."


@dataclasses.dataclass(frozen=True)
class Capacity:
    slots: int  # the workers the run gets: requests the target serves at once (at most `wanted`)
    single_seconds: float
    together_seconds: tuple[float, ...]  # each batch of `wanted` requests sent at once; () when not measured
    wanted: int
    max_tokens: int = 0  # the probe's length
    tokens: int | None = None  # what one generation of it came to (usage), when the target said
    why: str = ""
    sent: int = 0  # requests sent at once in each batch

    def line(self) -> str:
        length = f"{self.tokens} tokens" if self.tokens is not None else f"at most {self.max_tokens} tokens"
        if not self.together_seconds:
            return (f"the target answers a generation ({length}) in {self.single_seconds:.2f}s: "
                    f"{self.wanted} worker(s)")
        batches = ", ".join(f"{t:.2f}s" for t in self.together_seconds)
        return (f"one generation ({length}) took {self.single_seconds:.2f}s; {self.sent} sent at once took "
                f"{batches}: {self.why}; so {self.slots} worker(s) (set [limits] concurrency in the target file to "
                "choose)")


def estimate(sent: int, single: float, together: float) -> float:
    """Requests served at once, from one generation's time and that of `sent` sent together."""
    return sent * single / together if together > 0 else float(sent)


def decide(wanted: int, sent: int, single: float, batches: list[float]) -> tuple[int, str, bool]:
    """(workers, why, clear) from batches of `sent` requests at once: the count the batches agree on, near
    a whole count; `wanted` when they all ended together (it serves every one sent at once, and more may
    well be); else 1, and not clear."""
    estimates = [min(float(sent), estimate(sent, single, t)) for t in batches]
    shown = ", ".join(f"{e:.1f}" for e in estimates)
    if all(e >= TOGETHER * sent for e in estimates):
        return wanted, f"it served all {sent} at once (each batch: {shown})", True
    counts = {max(1, round(e)) for e in estimates}
    if len(counts) == 1 and all(abs(e - round(e)) <= CLEAR for e in estimates):
        slots = counts.pop()
        return slots, f"it serves about {slots} at a time (each batch: {shown})", True
    if len(counts) == 1:
        return 1, f"each batch falls between two counts ({shown}): one at a time to be safe", False
    return 1, f"the batches do not agree on how many it serves at once ({shown}): one at a time to be safe", False


def measure(base_url: str, api_key: str, model: str, wanted: int, timeout: float = 120.0,
            headers: dict | None = None, chat: bool = True) -> Capacity | None:
    """The target's capacity, or None when the probe itself failed (the run then says why);
    `chat`: probe /chat/completions, else /completions."""
    url = base_url.rstrip("/") + ("/chat/completions" if chat else "/completions")
    sent_headers = {"Authorization": f"Bearer {api_key}", **(headers or {})}
    sent = min(wanted, MOST_AT_ONCE)

    def body(max_tokens: int) -> dict:
        asked = {"model": model, "max_tokens": max_tokens, "temperature": 0}
        return {**asked, "messages": [{"role": "user", "content": PROMPT}]} if chat else {**asked, "prompt": PROMPT}

    with httpx2.Client(timeout=timeout, headers=sent_headers, follow_redirects=False) as client:
        def one(max_tokens: int, wait: float = timeout) -> tuple[float, int | None]:
            started = time.monotonic()
            response = client.post(url, json=body(max_tokens), timeout=wait)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}")
            try:
                tokens = response.json().get("usage", {}).get("completion_tokens")
            except (ValueError, AttributeError):
                tokens = None
            return time.monotonic() - started, tokens if isinstance(tokens, int) else None

        def at_once(max_tokens: int, single: float) -> float:
            started = time.monotonic()
            queued = timeout + 2 * sent * single  # served one after the other, the last waits for all
            with concurrent.futures.ThreadPoolExecutor(sent) as pool:
                list(pool.map(lambda _: one(max_tokens, queued), range(sent)))
            return time.monotonic() - started

        try:
            one(LENGTHS[0])  # a cold start (loading, compiling) is not the generation's time
            for max_tokens in LENGTHS:
                timings = [one(max_tokens) for _ in range(2)]
                single, tokens = min(t for t, _ in timings), timings[0][1]
                if single >= LONG_ENOUGH_SECONDS or (tokens is not None and tokens < max_tokens):
                    break  # long enough, or as long as the model makes it
            if wanted <= 1:
                return Capacity(wanted, single, (), wanted, max_tokens, tokens)
            batches: list[float] = []
            for _ in range(BATCHES):  # until two batches in a row agree
                batches.append(at_once(max_tokens, single))
                if len(batches) >= 2:
                    slots, why, clear = decide(wanted, sent, single, batches[-2:])
                    if clear:
                        break
            if not clear:
                slots, why, _ = decide(wanted, sent, single, batches)
        except (httpx2.HTTPError, RuntimeError):
            return None
    return Capacity(slots, single, tuple(batches), wanted, max_tokens, tokens, why, sent)
