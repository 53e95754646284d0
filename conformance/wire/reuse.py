"""One answer judged by every check instance that asks the same question.

Many instances send the very same request: the `sdk` and `http` variants of a check, and checks that
judge different clauses of one ordinary request. The target's answer to a completion request (its
status, headers and body, as the reads it arrived in; a /responses answer too) is kept, and an instance that later sends the
identical request (same method, URL, key and JSON body) is answered from it by the transport. The
official client still parses those bytes, so each path judges the answer as if it had come over the
wire. What keeps the verdicts what they were:

- an instance never sees one answer twice: a check that sends a request twice (repeatability, tries
  until two agree) gets a second answer, sent afresh when no other is kept;
- each endpoint and mode goes over the wire through the openai SDK and through raw HTTP at least
  once per model and process, so neither path is judged only on bytes the other fetched;
- only whole answers are kept: never a 5xx or a retried status, a stream cut short or a body that
  never came; and only `Api.create` requests (completions), not the raw ones of error checks. The
  openai SDK stops reading a stream at `data: [DONE]`: what it read is kept for SDK requests alone.

`--no-reuse` sends every request. The store is shared by a run's pytest-xdist workers through
files in the run folder (written once, never changed, so no lock is needed), and answers holding a
secret stay in the memory of the process that received them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import httpx2

# Generations: a response created on /responses is kept by the target too, so a check that reads back
# what the target kept sends its own (`fresh`), never an answer another instance's request got.
REUSED_PATHS = ("/chat/completions", "/completions", "/responses")
REUSED_NOTE = ("this is the answer the target gave an identical request (same URL, key and JSON body) earlier in "
               "this run, judged here as well")


@dataclasses.dataclass(frozen=True)
class Answer:
    """A target's whole answer to one request, as the transport received it (headers redacted)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    reads: tuple[bytes, ...]
    elapsed_ms: float
    sdk_only: bool = False  # a stream read up to its `data: [DONE]`, where the openai SDK stops reading

    def to_json(self) -> str:
        return json.dumps({"status": self.status, "headers": self.headers, "elapsed_ms": self.elapsed_ms,
                           "reads": [base64.b64encode(r).decode() for r in self.reads], "sdk_only": self.sdk_only})

    @classmethod
    def from_json(cls, text: str) -> "Answer":
        d = json.loads(text)
        return cls(d["status"], tuple(tuple(h) for h in d["headers"]), tuple(base64.b64decode(r) for r in d["reads"]),
                   d["elapsed_ms"], d["sdk_only"])


@dataclasses.dataclass(frozen=True)
class Question:
    """What a request asks: `digest` names the question (method, URL, Authorization and the body's
    JSON, key order aside); `kind` is the endpoint, model, mode and client ('sdk' or 'http'),
    whichever a path has sent over the wire."""

    digest: str
    kind: tuple[str, str, str, str]

    @property
    def sdk(self) -> bool:
        """The openai SDK sent it."""
        return self.kind[-1] == "sdk"


def question(request: httpx2.Request) -> Question | None:
    """The question a request asks, or None when it is not one whose answer is kept."""
    url = str(request.url)
    if request.method != "POST" or not url.split("?")[0].endswith(REUSED_PATHS):
        return None
    try:
        body = json.loads(request.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    authorization = request.headers.get("authorization", "")
    digest = hashlib.sha256("\n".join((request.method, url, authorization, canonical)).encode()).hexdigest()[:32]
    client = "sdk" if request.headers.get("user-agent", "").startswith("OpenAI/") else "http"
    mode = "stream" if body.get("stream") is True else "regular"
    return Question(digest, (url.split("?")[0], str(body.get("model")), mode, client))


class AnswerStore:
    """Answers by request digest: files in `directory` (shared by a run's processes) or, without one,
    this process's memory. An answer's id is '<digest>.<n>', n counting the answers kept for it."""

    def __init__(self, directory: Path | None = None, enabled: bool = True):
        self.enabled = enabled
        self.directory = directory
        self._memory: dict[str, list[Answer]] = {}
        self.kinds_sent: set[tuple[str, ...]] = set()  # kinds this process has sent over the wire (Question)

    def unseen(self, digest: str, seen: set[str], sdk: bool) -> tuple[str, Answer] | None:
        """The first answer kept for `digest` whose id is not in `seen` (and, unless `sdk`, that is whole)."""
        for number, answer in enumerate(self._memory.get(digest, ())):
            if f"{digest}.m{number}" not in seen and (sdk or not answer.sdk_only):
                return f"{digest}.m{number}", answer
        if self.directory is None:
            return None
        number = 0
        while True:
            path, answer_id = self.directory / f"{digest}.{number}.json", f"{digest}.{number}"
            number += 1
            if answer_id in seen:  # judged here already: not read again
                if path.is_file():
                    continue
                return None
            try:
                answer = Answer.from_json(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                return None
            if sdk or not answer.sdk_only:
                return answer_id, answer

    def keep(self, digest: str, answer: Answer, private: bool) -> str:
        """Keep `answer`; `private`: it holds a secret, so it stays in this process's memory."""
        if self.directory is None or private:
            kept = self._memory.setdefault(digest, [])
            kept.append(answer)
            return f"{digest}.m{len(kept) - 1}"
        self.directory.mkdir(parents=True, exist_ok=True)
        scratch = self.directory / f".{digest}.{os.getpid()}.tmp"
        scratch.write_text(answer.to_json(), encoding="utf-8")
        number = 0
        try:
            while True:  # a hard link is made whole or not at all: a reader never sees half a file
                try:
                    os.link(scratch, self.directory / f"{digest}.{number}.json")
                    return f"{digest}.{number}"
                except FileExistsError:
                    number += 1
        finally:
            scratch.unlink(missing_ok=True)


class ReplayStream(httpx2.SyncByteStream):
    """A kept answer's body, in the reads it first arrived in."""

    def __init__(self, reads: tuple[bytes, ...]):
        self._reads = reads

    def __iter__(self):
        yield from self._reads

    def close(self) -> None:
        pass
