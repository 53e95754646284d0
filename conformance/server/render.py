"""Rendering of the reference server: choices and usage in, OpenAI's shapes out.

Response bodies, the chunks of a stream (`Stream`, each chunk tagged with what it carries, so
the quirk layer can find "the first token" or "the head of a tool call" without parsing JSON
back), their SSE frames, error bodies and model objects.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

from .entropy import FRESH, Entropy
from .generate import Choice
from .model import VOCAB
from .validate import ApiError


def top_alternatives(dist: list[float], k: int) -> list[tuple[str, float]]:
    ids = sorted(range(len(dist)), key=lambda i: -dist[i])[:k]
    return [(VOCAB[i], dist[i]) for i in ids]


def chat_logprobs(entries, k: int) -> dict:
    return {"content": [
        {"token": text, "logprob": dist[tid], "bytes": list(text.encode()),
         "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top_alternatives(dist, k)]}
        for text, tid, dist in entries], "refusal": None}


def completion_logprobs(entries, k: int, offset: int) -> dict:
    out: dict = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for text, tid, dist in entries:
        out["tokens"].append(text)
        out["token_logprobs"].append(None if dist is None else dist[tid])
        out["top_logprobs"].append(None if dist is None else dict(top_alternatives(dist, k)))
        out["text_offset"].append(offset)
        offset += len(text)
    return out


def completion_id(endpoint: str, entropy: Entropy = FRESH) -> str:
    return ("chatcmpl-" if endpoint == "chat" else "cmpl-") + entropy.hex(24)


def text_fragments(text: str, size: int = 8) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


@dataclasses.dataclass
class Chunk:
    """One `data:` payload of a stream: a JSON object (`data`) or literal text (`text`: [DONE]).

    `kind` says what it carries: role (a chat choice's first delta), tool-head / tool-args (a
    tool call's first delta, then its argument fragments), function-call, echo (the prompt back),
    token, final (the finish_reason), usage, done.  `choice` is the choice index, `step` the
    token's step (token) or the call's index (tool-*), `token` the token's text, `call` the call.
    """

    kind: str
    data: dict | None = None
    text: str | None = None
    choice: int | None = None
    step: int | None = None
    token: str | None = None
    call: dict | None = None

    def payload(self) -> str:
        return self.text if self.text is not None else json.dumps(self.data)


@dataclasses.dataclass
class Stream:
    """A streamed response before framing: its chunks and what they were made from."""

    endpoint: str
    chunks: list[Chunk]
    usage: dict
    include_usage: bool
    base: dict  # id, created, model, system_fingerprint: the envelope every chunk shares
    object_name: str


class Responses:
    """Response bodies and stream chunks, in OpenAI's shapes; ids and times drawn from `entropy`."""

    def __init__(self, entropy: Entropy = FRESH):
        self.entropy = entropy

    def _base(self, endpoint: str, model: str) -> dict:
        return {"id": completion_id(endpoint, self.entropy), "created": self.entropy.now(), "model": model,
                "system_fingerprint": f"fp_{model}"}

    def _choice_extras(self, endpoint: str, choice: Choice | None = None, entries=None, offset: int = 0) -> dict:
        """logprobs: when asked for, the choice's; else null."""
        if choice is not None and choice.logprobs_k is not None:
            entries = choice.token_entries() if entries is None else entries
            return {"logprobs": chat_logprobs(entries, choice.logprobs_k) if endpoint == "chat"
                    else completion_logprobs(entries, choice.logprobs_k, offset)}
        return {"logprobs": None}

    @staticmethod
    def tool_call(call: dict, index: int | None = None, with_arguments: bool = True) -> dict:
        """One entry of message.tool_calls, or (with an index) the first delta of a streamed one."""
        out: dict = {} if index is None else {"index": index}
        out["id"] = call["id"]
        out["type"] = "function"
        out["function"] = {"name": call["name"], "arguments": call["arguments"] if with_arguments else ""}
        return out

    def tool_call_deltas(self, c: Choice) -> Iterator[tuple[str, int | None, dict | None, dict]]:
        """(kind, call index, call, delta) for a choice's calls: each call's head, then its arguments
        in fragments."""
        if c.function_call:
            yield "function-call", None, None, {"function_call": {"name": c.function_call["name"], "arguments": ""}}
            for fragment in text_fragments(c.function_call["arguments"]):
                yield "function-call", None, None, {"function_call": {"arguments": fragment}}
            return
        for i, call in enumerate(c.tool_calls):
            yield "tool-head", i, call, {"tool_calls": [self.tool_call(call, i, with_arguments=False)]}
            fragments = text_fragments(call["arguments"]) if isinstance(call["arguments"], str) else [call["arguments"]]
            for fragment in fragments:
                yield "tool-args", i, call, {"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}

    def body(self, endpoint: str, model: str, choices: list[Choice], usage: dict) -> dict:
        base = self._base(endpoint, model)
        if endpoint == "chat":
            def message(c: Choice) -> dict:
                m = {"role": "assistant", "content": None if c.calls else c.text, "refusal": None}
                if c.tool_calls:
                    m["tool_calls"] = [self.tool_call(call) for call in c.tool_calls]
                if c.function_call:
                    m["function_call"] = dict(c.function_call)
                return m
            return {**base, "object": "chat.completion", "choices": [
                {"index": c.index, "message": message(c), **self._choice_extras(endpoint, c),
                 "finish_reason": c.finish_reason} for c in choices], "usage": usage}
        return {**base, "object": "text_completion", "choices": [
            {"text": c.text, "index": c.index, **self._choice_extras(endpoint, c), "finish_reason": c.finish_reason}
            for c in choices], "usage": usage}

    def stream(self, endpoint: str, model: str, choices: list[Choice], usage: dict, include_usage: bool) -> Stream:
        """The chunks of a streamed response, ending with [DONE]: every chat choice's role delta,
        then its calls, the echoed prompt, the tokens (choices interleaved, a step at a time), every
        choice's finish_reason, and the usage chunk when include_usage asks for it."""
        base = self._base(endpoint, model)
        object_name = {"chat": "chat.completion.chunk", "completions": "text_completion"}[endpoint]
        usage_field = {"usage": None} if include_usage else {}
        chunks: list[Chunk] = []

        def chunk(kind: str, choice: dict, **tags) -> None:
            data = {**base, "object": object_name, "choices": [choice], **usage_field}
            chunks.append(Chunk(kind, data, choice=choice["index"], **tags))

        def piece(kind: str, c: Choice, text: str | None, finish: str | None, entries=(), offset: int = 0,
                  **tags) -> None:
            extras = self._choice_extras(endpoint, c if entries else None, list(entries), offset)
            if endpoint == "chat":
                delta: dict = {}
                if kind == "role":
                    delta = {"role": "assistant", "content": None if c.calls else "", "refusal": None}
                elif text is not None:
                    delta = {"content": text}
                chunk(kind, {"index": c.index, "delta": delta, **extras, "finish_reason": finish}, **tags)
            else:
                chunk(kind, {"text": text or "", "index": c.index, **extras, "finish_reason": finish}, **tags)

        if endpoint == "chat":
            for c in choices:
                piece("role", c, None, None)
            for c in choices:
                for kind, i, call, delta in self.tool_call_deltas(c):
                    chunk(kind, {"index": c.index, "delta": delta, **self._choice_extras(endpoint),
                                 "finish_reason": None}, step=i, call=call)
        offsets = {}
        for c in choices:
            if c.prefix:  # echo: the prompt comes first
                prefix_entries = c.token_entries()[:len(c.prefix)]
                piece("echo", c, "".join(c.prefix), None, entries=prefix_entries if c.logprobs_k is not None else ())
            offsets[c.index] = len("".join(c.prefix))
        steps = {c.index: list(zip(c.pieces, c.token_ids, c.steps or [None] * len(c.pieces))) for c in choices}
        longest = max((len(s) for s in steps.values()), default=0)
        for step in range(longest):
            for c in choices:
                if step < len(steps[c.index]):
                    entry = steps[c.index][step]
                    piece("token", c, entry[0], None, entries=[entry] if c.logprobs_k is not None else (),
                          offset=offsets[c.index], step=step, token=entry[0])
                    offsets[c.index] += len(entry[0])
        for c in choices:
            piece("final", c, None, c.finish_reason)
        if include_usage:
            chunks.append(Chunk("usage", {**base, "object": object_name, "choices": [], "usage": usage}))
        chunks.append(Chunk("done", text="[DONE]"))
        return Stream(endpoint, chunks, usage, include_usage, base, object_name)


def sse_frames(payloads: list[str], event_name: str | None = None, named: bool = False) -> list[str]:
    """Server-sent events, one a payload: `data: ...` and a blank line; `event: NAME` before it with
    an `event_name`, or (`named`) the payload's own `type`, as the Responses API names its events."""
    def line(data: str) -> str:
        name = event_name or (json.loads(data).get("type") if named and data.startswith("{") else None)
        return f"event: {name}\n" if name else ""

    return [f"{line(data)}data: {data}\n\n" for data in payloads]


def error_response(err: ApiError) -> tuple[int, dict | bytes]:
    """The status and body of an error: OpenAI's envelope, or plain text for a crash."""
    if err.raw:
        return err.status, err.body["error"]["message"].encode()
    return err.status, {"error": dict(err.body["error"])}


def models_list(names: list[str], created: int) -> dict:
    return {"object": "list", "data": [model_object(name, created) for name in names]}


def model_object(name: str, created: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "conformance-reference"}
