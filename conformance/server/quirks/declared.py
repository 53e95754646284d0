"""Every quirk and variation, each declared once: what it breaks, and what it changes (base.py
lists the seams).  The order is the registry's: `serve --list-quirks` and the kill matrix follow it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from typing import Callable, Iterable

from ...config.catalogue import load_catalogue
from ..render import Chunk, Stream, completion_id
from ..validate import MODEL_UNSUPPORTED, ApiError, unknown_model_error
from .base import Quirk
from .responses import RESPONSES_QUIRKS, RESPONSES_VARIATIONS


def _both(feature: str) -> tuple[str, ...]:
    return (f"chat.{feature}", f"completions.{feature}")


def _all_three(feature: str) -> tuple[str, ...]:
    """The feature of every endpoint that generates: a quirk of the server's error handling (its
    envelope, its statuses, its refusals) changes /responses as it changes the other two."""
    return (*_both(feature), f"responses.{feature}")


def _deviates(features: Iterable[str]) -> tuple[tuple[str, str], ...]:
    return tuple((f, "deviates") for f in features)


# --- helpers for the seams ------------------------------------------------------------------

# The chunks built for a choice (every kind but the usage chunk and [DONE]).
CHOICE_KINDS = {"role", "tool-head", "tool-args", "function-call", "echo", "token", "final"}


def _responses(change: Callable[[dict], dict]) -> dict:
    """The same change to every response object: a regular body and each chunk of a stream."""
    def body_out(kind: str, body: dict) -> dict:
        return change(body) if kind in ("chat", "completions") else body

    def chunks_out(stream: Stream) -> list[Chunk]:
        return [dataclasses.replace(c, data=change(c.data)) if c.data is not None else c for c in stream.chunks]

    return {"body_out": body_out, "chunks_out": chunks_out}


def _chunks(change: Callable[[Chunk, Stream], Chunk | None], kinds: Iterable[str] = CHOICE_KINDS) -> dict:
    """A change to each chunk of the given kinds (None drops it)."""
    kinds = set(kinds)

    def chunks_out(stream: Stream) -> list[Chunk]:
        out = [change(c, stream) if c.kind in kinds else c for c in stream.chunks]
        return [c for c in out if c is not None]

    return {"chunks_out": chunks_out}


def _choice_of(c: Chunk, change: Callable[[dict], dict]) -> Chunk:
    return dataclasses.replace(c, data={**c.data, "choices": [change(c.data["choices"][0])]})


def _map_choices(o: dict, change: Callable[[dict], dict]) -> dict:
    if not isinstance(o.get("choices"), list):
        return o
    return {**o, "choices": [change(ch) for ch in o["choices"]]}


def _insert(d: dict, before: str, key: str, value) -> dict:
    """d with `key` added just before `before` (at the end without it)."""
    out, placed = {}, False
    for k, v in d.items():
        if k == before and not placed:
            out[key], placed = value, True
        out[k] = v
    if not placed:
        out[key] = value
    return out


def _chat_alternatives(o: dict, change: Callable[[int, list], list]) -> dict:
    """Each chat logprobs.content entry's top_logprobs, changed: change(i, every entry's list) -> entry i's.
    (A stream's chunks carry an entry each, so a change across positions sees one position there.)"""
    def choice(ch: dict) -> dict:
        content = (ch.get("logprobs") or {}).get("content")
        if not content:
            return ch
        tops = [e.get("top_logprobs") or [] for e in content]
        return {**ch, "logprobs": {**ch["logprobs"],
                                   "content": [{**e, "top_logprobs": change(i, tops)} for i, e in enumerate(content)]}}

    return _map_choices(o, choice)


def _tool_entries(o: dict, change: Callable[[dict], dict]) -> dict:
    """Each entry of message.tool_calls / delta.tool_calls, changed."""
    def choice(ch: dict) -> dict:
        for key in ("message", "delta"):
            part = ch.get(key)
            if isinstance(part, dict) and part.get("tool_calls"):
                ch = {**ch, key: {**part, "tool_calls": [change(dict(e)) for e in part["tool_calls"]]}}
        return ch
    return _map_choices(o, choice)


def _without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def _before_done(chunks: list[Chunk], extra: Chunk) -> list[Chunk]:
    at = next((i for i, c in enumerate(chunks) if c.kind == "done"), len(chunks))
    return chunks[:at] + [extra] + chunks[at:]


def _last_args(chunks: list[Chunk]) -> dict[tuple[int, int], int]:
    """(choice, call) -> the position of that call's last argument fragment."""
    return {(c.choice, c.step): i for i, c in enumerate(chunks) if c.kind == "tool-args"}


def _refuse_roles(*roles: str) -> Callable:
    def request_valid(endpoint: str, request: dict, models) -> dict:
        if endpoint == "chat":
            for i, m in enumerate(request["messages"]):
                if m.get("role") in roles:
                    raise ApiError(400, "Conversation roles must alternate user/assistant/user/assistant/...",
                                   param=f"messages[{i}].role")
        return request
    return request_valid


def _refuse_content_parts(endpoint: str, request: dict, models) -> dict:
    if endpoint == "chat":
        for i, m in enumerate(request["messages"]):
            if isinstance(m.get("content"), list):
                raise ApiError(400, "Input should be a valid string", param=f"messages[{i}].content")
    return request


def _stop_first_only(endpoint: str, request: dict, models) -> dict:
    stop = request.get("stop")
    return {**request, "stop": stop[:1]} if isinstance(stop, list) else request


def _stop_string_ignored(endpoint: str, request: dict, models) -> dict:
    return _without(request, "stop") if isinstance(request.get("stop"), str) else request


def _n_collapsed_at_greedy(endpoint: str, request: dict, models) -> dict:
    return {**request, "n": 1} if request.get("temperature") == 0 and (request.get("n") or 1) > 1 else request


def _prompt_list_first_only(endpoint: str, request: dict, models) -> dict:
    prompt = request.get("prompt")
    if isinstance(prompt, list) and not all(isinstance(x, int) for x in prompt):
        return {**request, "prompt": prompt[:1]}
    return request


def _json_schema_loose(endpoint: str, request: dict, models) -> dict:
    rf = request.get("response_format") or {}
    if rf.get("type") != "json_schema":
        return request
    return {**request, "response_format": {**rf, "json_schema": {**rf["json_schema"], "schema": {"type": "object"}}}}


def _default_model(endpoint: str, body, models) -> dict:
    if isinstance(body, dict) and body.get("model") is None:
        return {**body, "model": models[0]}
    return body


def _unknown_model_400(endpoint: str, request: dict, models) -> dict:
    if request["model"] not in models:
        raise ApiError(400, f"The model `{request['model']}` does not exist.", param="model")
    return request


def _unknown_model_code_null(endpoint: str, request: dict, models) -> dict:
    if request["model"] not in models:
        err = unknown_model_error(request["model"])
        err.body["error"]["code"] = None
        raise err
    return request


def _usage_miscounted(usage: dict) -> dict:
    return {**usage, "total_tokens": usage["total_tokens"] + 1}


def _usage_prompt_zero(usage: dict) -> dict:
    return {**usage, "prompt_tokens": 0, "total_tokens": usage["total_tokens"] - usage["prompt_tokens"]}


def _usage_details(usage: dict) -> dict:
    return {**usage, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _created_float() -> dict:
    def body_out(kind: str, body: dict) -> dict:
        return {**body, "created": time.time()} if kind in ("chat", "completions") else body

    def chunks_out(stream: Stream) -> list[Chunk]:
        now = time.time()  # one stream, one time
        return [dataclasses.replace(c, data={**c.data, "created": now}) if c.data is not None else c
                for c in stream.chunks]

    return {"body_out": body_out, "chunks_out": chunks_out}


def _text_as_message(o: dict) -> dict:
    return _map_choices(o, lambda ch: {("message" if k == "text" else k): v for k, v in ch.items()})


# --- stream chunks --------------------------------------------------------------------------

def _stream_no_role(c: Chunk, s: Stream) -> Chunk:
    return _choice_of(c, lambda ch: {**ch, "delta": _without(ch["delta"], "role")})


def _stream_role_every_delta(c: Chunk, s: Stream) -> Chunk:
    if s.endpoint != "chat":
        return c
    return _choice_of(c, lambda ch: {**ch, "delta": {**ch["delta"], "role": "assistant"}})


def _stream_wrong_object(c: Chunk, s: Stream) -> Chunk:
    wrong = {"chat": "chat.completion", "completions": "text_completion.chunk"}[s.endpoint]
    return dataclasses.replace(c, data={**c.data, "object": wrong})


def _stream_usage_choices_null(c: Chunk, s: Stream) -> Chunk:
    return dataclasses.replace(c, data={**c.data, "choices": None})


def _stream_finish_reason_absent(c: Chunk, s: Stream) -> Chunk:
    if c.data["choices"][0].get("finish_reason") is not None:
        return c
    return _choice_of(c, lambda ch: _without(ch, "finish_reason"))


def _stream_finish_reason_empty(c: Chunk, s: Stream) -> Chunk:
    if c.data["choices"][0].get("finish_reason") is not None:
        return c
    return _choice_of(c, lambda ch: {**ch, "finish_reason": ""})


def _stream_id_per_chunk(stream: Stream) -> list[Chunk]:
    return [dataclasses.replace(c, data={**c.data, "id": completion_id(stream.endpoint)})
            if c.kind in CHOICE_KINDS else c for c in stream.chunks]


def _stream_created_per_chunk(stream: Stream) -> list[Chunk]:
    out, sent = [], 0
    for c in stream.chunks:
        if c.kind in CHOICE_KINDS:  # as if every chunk left a second after the one before
            sent += 1
            c = dataclasses.replace(c, data={**c.data, "created": stream.base["created"] + sent})
        out.append(c)
    return out


def _stream_finish_reason_repeated(stream: Stream) -> list[Chunk]:
    out = []
    for c in stream.chunks:
        out.append(c)
        if c.kind == "final":
            out.append(dataclasses.replace(c, data=copy.deepcopy(c.data)))
    return out


def _stream_usage_always(stream: Stream) -> list[Chunk]:
    if stream.include_usage:
        return stream.chunks
    usage = Chunk("usage", {**stream.base, "object": stream.object_name, "choices": [], "usage": stream.usage})
    return _before_done(stream.chunks, usage)


def _stream_usage_unasked(stream: Stream) -> list[Chunk]:
    if stream.include_usage:
        return stream.chunks
    finals = [c for c in stream.chunks if c.kind == "final"]
    if not finals:
        return stream.chunks
    last = next(c for c in finals if c.choice == finals[-1].choice)  # llama-server's last chunk
    return [dataclasses.replace(c, data={**c.data, "usage": stream.usage}) if c is last else c
            for c in stream.chunks]


def _stream_malformed_event(stream: Stream) -> list[Chunk]:
    firsts = [i for i, c in enumerate(stream.chunks) if c.kind == "token" and c.step == 0]
    if not firsts:
        return stream.chunks
    broken = Chunk("raw", text='{"id": "broken", "choices": [{"index": 0, "delta": {"content": "x"')
    at = firsts[-1] + 1
    return stream.chunks[:at] + [broken] + stream.chunks[at:]


def _stream_drops_first_token(stream: Stream) -> list[Chunk]:
    dropped = {c.choice: len(c.token or "") for c in stream.chunks if c.kind == "token" and c.step == 0}
    out = []
    for c in stream.chunks:
        if c.kind == "token" and c.step == 0:
            continue
        logprobs = c.data["choices"][0].get("logprobs") if c.kind == "token" else None
        if isinstance(logprobs, dict) and "text_offset" in logprobs:
            # the offsets count the text sent, and the first token was not
            shift = dropped.get(c.choice, 0)
            logprobs = {**logprobs, "text_offset": [o - shift for o in logprobs["text_offset"]]}
            c = _choice_of(c, lambda ch: {**ch, "logprobs": logprobs})
        out.append(c)
    return out


def _tool_call_no_index(c: Chunk, s: Stream) -> Chunk:
    return dataclasses.replace(c, data=_tool_entries(c.data, lambda e: _without(e, "index")))


def _tool_call_name_late(stream: Stream) -> list[Chunk]:
    last = set(_last_args(stream.chunks).values())
    out = []
    for i, c in enumerate(stream.chunks):
        if c.kind == "tool-head":
            c = dataclasses.replace(c, data=_tool_entries(
                c.data, lambda e: {**e, "function": _without(e["function"], "name")}))
        elif i in last:
            name = c.call["name"]
            c = dataclasses.replace(c, data=_tool_entries(
                c.data, lambda e: {**e, "function": {"name": name, **e["function"]}}))
        out.append(c)
    return out


def _tool_call_head_repeated(c: Chunk, s: Stream) -> Chunk:
    call = c.call  # LiteLLM, Fireworks: the head in every delta
    return dataclasses.replace(c, data=_tool_entries(c.data, lambda e: {
        **_without(e, "function"), "id": call["id"], "type": "function",
        "function": {"name": call["name"], **e["function"]}}))


def _tool_arguments_duplicated(stream: Stream) -> list[Chunk]:
    last = set(_last_args(stream.chunks).values())
    out = []
    for i, c in enumerate(stream.chunks):
        out.append(c)
        if i in last and isinstance(c.call["arguments"], str):
            # vLLM's end-of-stream flush: the whole arguments once more, after the fragments
            entry = c.data["choices"][0]["delta"]["tool_calls"][0]
            again = {**({"index": entry["index"]} if "index" in entry else {}),
                     "function": {"arguments": c.call["arguments"]}}
            out.append(_choice_of(c, lambda ch: {**ch, "delta": {"tool_calls": [again]}}))
    return out


# --- errors, frames, HTTP -------------------------------------------------------------------

def _enveloped(change: Callable[[int, dict], tuple[int, dict]]) -> Callable:
    def error_out(status: int, body: dict) -> tuple[int, dict]:
        return change(status, body["error"]) if isinstance(body.get("error"), dict) else (status, body)
    return error_out


def _malformed_json_500(raw: bytes) -> None:
    try:
        json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(500, "Internal Server Error", raw=True) from None


def _stream_unterminated(frames: list[str]) -> list[str]:
    if frames and frames[-1].endswith("\n\n"):
        return frames[:-1] + [frames[-1][:-1]]
    return frames


def _newlines(newline: str) -> Callable:
    # JSON payloads escape their own line breaks: every "\n" of a frame is a line end.
    return lambda frames: [f.replace("\n", newline) for f in frames]


def _keep_alive_comments(frames: list[str]) -> list[str]:
    def newline(frame: str) -> str:
        return "\r\n" if "\r\n" in frame else "\r" if "\r" in frame else "\n"
    return [f": keep-alive{newline(f)}{newline(f)}" + f for f in frames]


def _models(change: Callable[[dict], dict]) -> Callable:
    """The same change to every model object, listed or retrieved."""
    def body_out(kind: str, body: dict) -> dict:
        if kind == "models":
            return {**body, "data": [change(dict(m)) for m in body["data"]]}
        return change(dict(body)) if kind == "model" else body
    return body_out


def _models_owner(m: dict) -> dict:
    m["owner"] = m.pop("owned_by")
    return m


def _without_optional(o: dict) -> dict:
    """What OpenAI's document leaves optional, left out: system_fingerprint, and a streamed delta's refusal."""
    def choice(ch: dict) -> dict:
        return {**ch, "delta": _without(ch["delta"], "refusal")} if isinstance(ch.get("delta"), dict) else ch
    return _map_choices(_without(o, "system_fingerprint"), choice)


def _without_null_logprobs(o: dict) -> dict:
    return _map_choices(o, lambda ch: {k: v for k, v in ch.items() if not (k == "logprobs" and v is None)})


def _without_refusal(o: dict) -> dict:
    return _map_choices(o, lambda ch: {**ch, "message": _without(ch["message"], "refusal")}
                        if isinstance(ch.get("message"), dict) else ch)


def _with_extra_fields(o: dict) -> dict:
    o = _insert(o, "object", "x_backend", {"node": "ref-1", "latency_ms": 3})  # the end of the envelope
    return _map_choices(o, lambda ch: _insert(ch, "finish_reason", "stop_reason", None))


# --- legal stream shapes ------------------------------------------------------------------

def _join_pieces(first: dict, second: dict) -> dict:
    """One choice object carrying two token pieces: their text and their logprobs, in order."""
    out = dict(first)
    if "delta" in first:
        out["delta"] = {**first["delta"], "content": (first["delta"].get("content") or "")
                        + (second["delta"].get("content") or "")}
    else:
        out["text"] = (first.get("text") or "") + (second.get("text") or "")
    a, b = first.get("logprobs"), second.get("logprobs")
    if isinstance(a, dict) and isinstance(b, dict):
        out["logprobs"] = {k: (a[k] + b[k]) if isinstance(a.get(k), list) and isinstance(b.get(k), list) else a.get(k)
                           for k in a}
    return out


def _tokens_in_pairs(stream: Stream) -> list[Chunk]:
    """Each choice's token chunks two at a time: the second's piece joined to the first's."""
    out, waiting = [], {}
    for c in stream.chunks:
        if c.kind == "token" and c.choice in waiting:
            first = waiting.pop(c.choice)
            out[first] = _choice_of(out[first], lambda ch: _join_pieces(ch, c.data["choices"][0]))
            continue
        if c.kind == "token":
            waiting[c.choice] = len(out)
        out.append(c)
    return out


def _finish_on_last_piece(stream: Stream) -> list[Chunk]:
    """Each choice's finish_reason on the chunk of its last piece (token or call), not a chunk of its own."""
    last = {c.choice: i for i, c in enumerate(stream.chunks) if c.kind in ("token", "tool-args", "function-call")}
    out = list(stream.chunks)
    for i, c in enumerate(stream.chunks):
        if c.kind == "final" and c.choice in last:
            reason = c.data["choices"][0]["finish_reason"]
            out[last[c.choice]] = _choice_of(out[last[c.choice]], lambda ch: {**ch, "finish_reason": reason})
            out[i] = None
    return [c for c in out if c is not None]


def _emptied(ch: dict) -> dict:
    """A choice object with an empty piece and no logprobs."""
    ch = {**ch, "logprobs": None}
    return {**ch, "delta": {"content": ""}} if "delta" in ch else {**ch, "text": ""}


def _empty_piece_first(stream: Stream) -> list[Chunk]:
    """An empty piece (content "" / text "") before each choice's first token."""
    out = []
    for c in stream.chunks:
        if c.kind == "token" and c.step == 0:
            out.append(dataclasses.replace(_choice_of(c, _emptied), kind="empty", step=None, token=None))
        out.append(c)
    return out


def _role_with_first_token(stream: Stream) -> list[Chunk]:
    """A chat choice's role in the delta of its first token (no chunk of its own)."""
    if stream.endpoint != "chat":
        return stream.chunks
    firsts = {c.choice for c in stream.chunks if c.kind == "token" and c.step == 0}
    out = []
    for c in stream.chunks:
        if c.kind == "role" and c.choice in firsts:
            continue
        if c.kind == "token" and c.step == 0:
            c = _choice_of(c, lambda ch: {**ch, "delta": {"role": "assistant", **ch["delta"]}})
        out.append(c)
    return out


def _choices_together(stream: Stream) -> list[Chunk]:
    """The token chunks of one step, for every choice (n > 1), in one chunk: its choices list has them all."""
    out: list[Chunk] = []
    for c in stream.chunks:
        prev = out[-1] if out else None
        if (c.kind == "token" and prev is not None and prev.kind == "token" and prev.step == c.step
                and c.choice not in {ch["index"] for ch in prev.data["choices"]}):
            out[-1] = dataclasses.replace(prev, data={**prev.data, "choices": prev.data["choices"] + c.data["choices"]})
            continue
        out.append(c)
    return out


def _choices_reversed(kind: str, body: dict) -> dict:
    """A regular body's choices listed last index first (each keeps its index)."""
    if kind in ("chat", "completions") and isinstance(body.get("choices"), list):
        return {**body, "choices": body["choices"][::-1]}
    return body


NAMED = [
    # semantics
    # It cuts the output (an effect), wrongly: the verdict must say so, never `honoured`.
    Quirk("stop-kept", "the stop sequence is left at the end of the output", _both("stop"),
          _deviates(_both("stop")), behaviour={"stop_kept": True}),
    Quirk("stop-first-only", "only the first of several stop sequences is honoured", _both("stop"),
          _deviates(_both("stop")), request_valid=_stop_first_only),
    Quirk("stop-string-ignored", "stop given as a plain string (not a list) is ignored", _both("stop"),
          request_valid=_stop_string_ignored),
    # Edge cases of stop matching: each breaks one case only, so the verdict must be `deviates`
    # (stop works in its common case), never `ignored`.
    Quirk("stop-ignored-at-start", "a stop sequence that begins in the first token of the output is not matched "
                                   "there", _both("stop"), _deviates(_both("stop")),
          behaviour={"stop_skips_first_token": True}),
    Quirk("stop-across-tokens-missed", "only a stop sequence inside one token is matched, not one spanning two",
          _both("stop"), _deviates(_both("stop")), behaviour={"stop_within_token_only": True}),
    Quirk("stop-unchecked-at-limit", "the last token max_tokens allows is not searched for stop sequences",
          _both("stop"), _deviates(_both("stop")), behaviour={"stop_unchecked_last_at_limit": True}),
    Quirk("stop-prefix-withheld-at-limit", "at the max_tokens limit, the end of the text that could begin a stop "
                                           "sequence is held back and never sent", _both("stop"),
          _deviates(_both("stop")), behaviour={"stop_prefix_withheld_at_limit": True}),
    Quirk("always-greedy", "temperature and top_p are ignored: every request is decoded greedily",
          _both("temperature"), (("chat.temperature", "ignored"), ("completions.temperature", "ignored")),
          behaviour={"greedy": "always"}),
    Quirk("greedy-not-repeatable", "temperature 0 still samples, so it is not repeatable", _both("temperature"),
          behaviour={"zero_temperature_samples": True}),
    Quirk("seed-drops-connection", "a request with a seed gets its connection dropped, every time",
          _both("seed"), (("chat.seed", "broken"), ("completions.seed", "broken")),
          drops=lambda raw: b'"seed"' in raw),
    Quirk("seed-forces-greedy", "a seed switches sampling off (the output no longer depends on the seed)",
          _both("seed"), behaviour={"greedy": "with-seed"}),
    Quirk("finish-reason-tgi", "finish_reason 'eos_token' / 'stop_sequence' instead of 'stop'",
          (*_both("stop"), "examples.netmind"),
          behaviour={"finish_natural": "eos_token", "finish_stop_sequence": "stop_sequence"}),
    Quirk("finish-stop-on-length", "finish_reason 'stop' when max_tokens was hit", _both("max_tokens"),
          behaviour={"finish_length": "stop"}),
    Quirk("max-tokens-off-by-one", "one token more than max_tokens is generated", _both("max_tokens"),
          behaviour={"extra_tokens": 1}),
    # Edge cases of n, max_tokens and echo, each apart from the common case: `deviates`, never
    # `rejected` or `ignored` (the common case still works).
    Quirk("n-refused-at-greedy", "n > 1 at temperature 0 is refused with 400 (n works when sampling)",
          _both("n"), _deviates(_both("n")), behaviour={"greedy_n_max": 1}),
    Quirk("n-collapsed-at-greedy", "n > 1 at temperature 0 answers one choice (n works when sampling)",
          _both("n"), _deviates(_both("n")), request_valid=_n_collapsed_at_greedy),
    Quirk("context-overflow-truncated", "a prompt that fits but with max_tokens exceeds the context is answered "
                                        "(200), the output cut where the context ends", _both("max_tokens"),
          _deviates(_both("max_tokens")), behaviour={"context_overflow_truncated": True}),
    Quirk("echo-zero-counts-token", "echo with max_tokens 0 generates one token and counts it",
          ("completions.echo",), (("completions.echo", "deviates"),), behaviour={"echo_zero_generates": 1}),
    Quirk("usage-miscounted", "total_tokens is not prompt_tokens + completion_tokens", _both("usage"),
          usage_out=_usage_miscounted),
    Quirk("usage-prompt-zero", "usage.prompt_tokens is always 0", ("chat.messages", "completions.prompt",
                                                                   *_both("usage")),
          usage_out=_usage_prompt_zero),
    Quirk("messages-last-only", "only the last message of the conversation is read", ("chat.messages",),
          (("chat.messages", "ignored"),), behaviour={"prompt_last_message_only": True}),
    Quirk("system-role-rejected", "system and assistant messages are refused with 400", ("chat.messages",),
          request_valid=_refuse_roles("system", "assistant")),
    Quirk("developer-role-rejected", "the developer role is refused with 400", ("chat.messages",),
          request_valid=_refuse_roles("developer")),
    Quirk("developer-role-dropped", "developer messages are accepted and left out of the prompt", ("chat.messages",),
          behaviour={"prompt_dropped_roles": frozenset({"developer"})}),
    Quirk("content-parts-first-only", "of content given as an array of parts, only the first part is read",
          ("chat.messages",), behaviour={"content_parts_first_only": True}),
    Quirk("prompt-first-token-only", "of a completions prompt, only the first token is read (and counted)",
          ("completions.prompt",), (("completions.prompt", "ignored"),), behaviour={"prompt_first_token_only": True}),
    Quirk("content-parts-rejected", "content given as an array of parts is refused with 400", ("chat.messages",),
          request_valid=_refuse_content_parts),
    Quirk("completions-text-as-message", "completions choices carry 'message' instead of 'text'",
          ("completions.prompt", "completions.response"), **_responses(_text_as_message)),
    Quirk("created-float", "'created' is a float timestamp", _both("response"), **_created_float()),
    Quirk("prompt-list-first-only", "a list of prompts is answered for its first prompt only", ("completions.prompt",),
          request_valid=_prompt_list_first_only),
    # tools, functions, JSON output, logprobs ranges, best_of
    Quirk("tool-calls-as-content", "tool calls come back as <tool_call> text in content (no tool parser)",
          ("chat.tools",), (("chat.tools", "ignored"),), behaviour={"tool_calls_as_content": True}),
    Quirk("tool-arguments-object", "function.arguments is a JSON object instead of a string", ("chat.tools",),
          behaviour={"tool_arguments_as_object": True}),
    Quirk("tool-arguments-loose", "tool arguments do not follow the function's parameter schema", ("chat.tools",),
          behaviour={"tool_arguments_follow_schema": False}),
    Quirk("tool-call-no-id", "tool calls carry no id", ("chat.tools",),
          **_responses(lambda o: _tool_entries(o, lambda e: _without(e, "id")))),
    Quirk("tool-finish-stop", "finish_reason 'stop' instead of 'tool_calls' after tool calls", ("chat.tool_choice",),
          behaviour={"finish_tool_calls": "stop"}),
    Quirk("stream-tool-call-no-index", "streamed tool-call deltas carry no index", ("chat.tools",),
          **_chunks(_tool_call_no_index, kinds=("tool-head", "tool-args"))),
    Quirk("stream-tool-call-name-late", "the function name arrives in the last tool-call delta, not the first",
          ("chat.tools",), chunks_out=_tool_call_name_late),
    Quirk("stream-tool-call-head-repeated", "every tool-call delta repeats the call's id, type and function.name",
          ("chat.tools",), **_chunks(_tool_call_head_repeated, kinds=("tool-args",))),
    Quirk("stream-tool-arguments-duplicated", "after its fragments, a call's whole arguments are streamed once more",
          ("chat.tools",), chunks_out=_tool_arguments_duplicated),
    Quirk("tool-role-rejected", "messages with role 'tool' are refused with 400", ("chat.tools",),
          request_valid=_refuse_roles("tool")),
    Quirk("tool-message-dropped", "tool results are left out of the prompt", ("chat.tools",),
          behaviour={"prompt_dropped_roles": frozenset({"tool"})}),
    Quirk("json-fenced", "JSON output is wrapped in a ```json code fence", ("chat.response_format",),
          behaviour={"json_fenced": True}),
    Quirk("json-schema-loose", "json_schema output is some JSON object, not one valid against the schema",
          ("chat.response_format",), request_valid=_json_schema_loose),
    Quirk("json-word-unchecked", "json_object mode without 'json' in the messages is accepted",
          ("chat.response_format",), behaviour={"json_word_required": False}),
    Quirk("functions-as-tool-calls", "deprecated functions are answered with tool_calls, not function_call",
          ("chat.functions",), behaviour={"functions_as_tool_calls": True}),
    Quirk("function-role-rejected", "messages with role 'function' are refused with 400", ("chat.functions",),
          request_valid=_refuse_roles("function")),
    Quirk("top-logprobs-capped", "top_logprobs is capped at 5 alternatives", ("chat.top_logprobs",),
          behaviour={"top_logprobs_cap": 5}),
    Quirk("top-logprobs-ascending", "a token's alternatives (chat top_logprobs) are listed least likely first",
          ("chat.top_logprobs",), **_responses(lambda o: _chat_alternatives(o, lambda i, tops: tops[i][::-1]))),
    Quirk("top-logprobs-shifted", "each token's alternatives are those of the next position (off by one)",
          ("chat.top_logprobs",),
          **_responses(lambda o: _chat_alternatives(o, lambda i, tops: tops[min(i + 1, len(tops) - 1)]))),
    Quirk("logprobs-zero-falsy", "logprobs/top_logprobs 0 is taken as 'no logprobs' (a falsy test)",
          ("chat.top_logprobs", "completions.logprobs"), behaviour={"logprobs_zero_off": True}),
    Quirk("best-of-unchecked", "best_of below n, and best_of with stream, are accepted",
          ("completions.best_of",), behaviour={"best_of_checked": False}),
    Quirk("context-truncated", "a prompt longer than the context is silently truncated (200)", _both("errors"),
          behaviour={"long_prompt_truncated": True}),
    Quirk("model-echo-wrong", "the response names another model than the one requested", _both("model"),
          **_responses(lambda o: {**o, "model": "some-other-model"})),
    # stream framing
    Quirk("stream-no-done", "the stream ends without data: [DONE]", _both("stream"), _deviates(_both("stream")),
          **_chunks(lambda c, s: None, kinds=("done",))),
    Quirk("stream-id-per-chunk", "every chunk of a stream has a new id", _both("stream"),
          chunks_out=_stream_id_per_chunk),
    Quirk("stream-created-per-chunk", "every chunk carries the time it was sent as 'created'", _both("stream"),
          chunks_out=_stream_created_per_chunk),
    Quirk("stream-no-role", "the first delta carries no role", ("chat.stream",),
          **_chunks(_stream_no_role, kinds=("role",))),
    Quirk("stream-role-every-delta", "role is repeated in every delta", ("chat.stream",),
          **_chunks(_stream_role_every_delta, kinds=("token",))),
    Quirk("stream-wrong-object", "chunks say object 'chat.completion' / 'text_completion.chunk'", _both("stream"),
          **_chunks(_stream_wrong_object, kinds=(*CHOICE_KINDS, "usage"))),
    Quirk("stream-error-event", "errors in stream mode are sent as an SSE 'event: error' frame with status 200",
          _both("errors"), error_event=lambda err: json.dumps(err.body) if err.status < 500 else None),
    Quirk("stream-usage-choices-null", "the include_usage chunk has choices: null", _both("stream_options"),
          **_chunks(_stream_usage_choices_null, kinds=("usage",))),
    Quirk("stream-content-type-json", "streams are sent with Content-Type application/json", _both("stream"),
          stream_headers=lambda headers: {**headers, "Content-Type": "application/json"}),
    Quirk("stream-finish-reason-repeated", "an extra final chunk repeats the finish_reason", _both("stream"),
          chunks_out=_stream_finish_reason_repeated),
    Quirk("stream-unterminated", "the last event ([DONE]) lacks its blank line", _both("stream"),
          frames_out=_stream_unterminated),
    Quirk("stream-usage-always", "a usage chunk with no choices ends every stream, asked for or not",
          ("examples.netmind", *_both("stream")), chunks_out=_stream_usage_always),
    Quirk("refusal-absent", "a message leaves the refusal key out when null (the SDK defaults it; strict clients "
                            "break)", ("chat.response",), **_responses(_without_refusal)),
    Quirk("logprobs-absent", "a choice leaves the logprobs key out when null (the SDK defaults it; strict clients "
                             "break)", _both("response"), **_responses(_without_null_logprobs)),
    Quirk("stream-finish-reason-absent", "chunks before the last leave the finish_reason key out (instead of null)",
          _both("stream"), **_chunks(_stream_finish_reason_absent)),
    Quirk("stream-finish-reason-empty", "chunks before the last carry finish_reason \"\" instead of null (Ollama, "
                                        "SGLang)", _both("stream"), **_chunks(_stream_finish_reason_empty)),
    Quirk("stream-usage-unasked", "the last chunk with a choice carries usage though include_usage was not asked for",
          _both("stream"), chunks_out=_stream_usage_unasked),
    Quirk("stream-malformed-event", "one event's data is not valid JSON", _both("stream"),
          chunks_out=_stream_malformed_event),
    Quirk("stream-drops-first-token", "the first token of the text is missing from the stream", _both("stream"),
          chunks_out=_stream_drops_first_token),
    # errors
    Quirk("errors-flat", "errors as a flat {object: 'error', message, ...} body", _all_three("errors"),
          error_out=_enveloped(lambda status, e: (status, {"object": "error", "message": e["message"],
                                                           "type": e["type"], "param": e["param"], "code": status}))),
    Quirk("errors-detail", "errors as {detail: ...} bodies", _all_three("errors"),
          error_out=_enveloped(lambda status, e: (status, {"detail": e["message"]}))),
    Quirk("errors-422", "422 instead of 400 for invalid requests", _all_three("errors"),
          error_out=lambda status, body: (422 if status == 400 else status, body)),
    Quirk("errors-no-param", "error.param is always null", _all_three("errors"),
          error_out=_enveloped(lambda status, e: (status, {"error": {**e, "param": None}}))),
    Quirk("out-of-range-accepted", "out-of-range values are accepted with 200", _all_three("errors"),
          behaviour={"ranges_checked": False}),
    Quirk("malformed-json-500", "a malformed JSON body gets 500", _all_three("errors"), raw_in=_malformed_json_500),
    Quirk("unknown-parameters-accepted", "unknown parameters are silently accepted", _all_three("errors"),
          behaviour={"unknown_parameters_refused": False}),
    Quirk("unknown-model-400", "an unknown model gets 400 instead of 404", _all_three("errors"),
          request_valid=_unknown_model_400),
    Quirk("unknown-model-code-null", "the unknown-model error has no code", _all_three("errors"),
          request_valid=_unknown_model_code_null),
    Quirk("missing-model-defaulted", "a request without a model is served by a default model", _all_three("errors"),
          request_in=_default_model),
    # authentication
    Quirk("any-key", "any key, or none, is accepted", ("auth.key",), behaviour={"keys_checked": False}),
    Quirk("wrong-key-403", "a wrong key gets 403 instead of 401", ("auth.key",),
          error_out=_enveloped(lambda status, e: (403 if e.get("code") == "invalid_api_key" else status,
                                                  {"error": e}))),
    # models
    Quirk("models-owner", "models carry 'owner' instead of 'owned_by'", ("models.list", "models.retrieve"),
          body_out=_models(_models_owner)),
    Quirk("models-no-created", "models lack 'created'", ("models.list", "models.retrieve"),
          body_out=_models(lambda m: _without(m, "created"))),
    Quirk("models-created-now", "'created' is the time of the call, not of the model", ("models.list",),
          body_out=_models(lambda m: {**m, "created": int(time.time())})),
    Quirk("models-no-retrieve", "GET /models/{id} is not served (404)", ("models.retrieve",),
          behaviour={"models_retrieve_served": False}),
    Quirk("models-list-empty", "GET /models lists no model", ("models.list",),
          body_out=lambda kind, body: {**body, "data": []} if kind == "models" else body),
    Quirk("models-unknown-200", "GET /models/{id} answers 200 for any id", ("models.retrieve",),
          behaviour={"unknown_models_retrieved": True}),
    # Scheduling: one model shared by every request (llama-cpp-python's server, by default).
    Quirk("streams-interrupted", "one generation at a time, and a running stream ends ([DONE], no finish_reason) "
                                 "as soon as another generation request waits", _both("stream"),
          behaviour={"one_generation_at_a_time": True, "streams_interrupted": True, "stream_seconds": 0.002}),
    Quirk("silent-with-max-completion-tokens", "a streamed chat request with max_completion_tokens gets keep-alive "
                                               "comments only, until its client leaves; its generation then keeps "
                                               "the one-at-a-time server busy 5 s more",
          ("chat.max_completion_tokens",),
          behaviour={"one_generation_at_a_time": True, "silent_with": "max_completion_tokens"}),
    *RESPONSES_QUIRKS,
]

VARIATIONS = [
    Quirk("crlf", "event-stream lines end in CRLF", (), variation=True, frames_out=_newlines("\r\n")),
    Quirk("cr", "event-stream lines end in CR", (), variation=True, frames_out=_newlines("\r")),
    Quirk("keep-alive-comments", "': keep-alive' comment lines between events", (), variation=True,
          frames_out=_keep_alive_comments),
    Quirk("split-reads", "every event arrives split across several network reads, mid-line", (), variation=True,
          writes=lambda frame: [frame[i:i + 7] for i in range(0, len(frame), 7)]),
    Quirk("extra-fields", "undocumented extra fields in every response object", (), variation=True,
          **_responses(_with_extra_fields)),
    Quirk("optional-fields-absent", "no system_fingerprint, and no refusal in a streamed delta (both optional)", (),
          variation=True, **_responses(_without_optional)),
    Quirk("usage-details", "usage carries prompt_tokens_details and completion_tokens_details", (),
          variation=True, usage_out=_usage_details),
    Quirk("no-spaces", "the model writes without spaces (as a random-weight model does): word-based oracles "
                       "would be wrong", (), variation=True, behaviour={"spaces": False}),
    Quirk("greedy-drift", "a seeded quarter of requests take the runner-up token once (greedy: the second-best), "
                          "then decode on as asked: a GPU's nondeterminism, at temperature 0 and with a seed alike",
          (), variation=True, behaviour={"drift": "greedy-drift"}),
    # The same drift under other seeds, each of which leaves a greedy baseline of the suite's itself on a
    # drifted path (its two agreeing tries took the same near tie the other way): chat's story prompt
    # under the first, completions' under the second (tests/test_mutation.py holds them to it).
    Quirk("drifted-baseline-chat", "greedy-drift under another seed, where chat's greedy baseline is itself drifted",
          (), variation=True, behaviour={"drift": "s3"}),
    Quirk("drifted-baseline-completions", "greedy-drift under another seed, where completions' greedy baseline "
                                          "is itself drifted", (), variation=True, behaviour={"drift": "s8"}),
    # Shapes of a stream that OpenAI's reference allows and engines send: nothing promises a token a chunk.
    Quirk("tokens-in-pairs", "two tokens to a chunk, as engines that stream at an interval send them", (),
          variation=True, chunks_out=_tokens_in_pairs),
    Quirk("finish-on-last-piece", "finish_reason on the chunk of the last token, not on a chunk of its own", (),
          variation=True, chunks_out=_finish_on_last_piece),
    Quirk("empty-piece-first", "an empty piece (content \"\" / text \"\") before the first token", (),
          variation=True, chunks_out=_empty_piece_first),
    Quirk("role-with-first-token", "the chat role arrives in the first token's delta, not a chunk of its own", (),
          variation=True, chunks_out=_role_with_first_token),
    Quirk("data-without-space", "'data:{...}' with no space after the colon, as the event-stream standard allows",
          (), variation=True, frames_out=lambda frames: [f.replace("data: ", "data:", 1) for f in frames]),
    Quirk("choices-together", "with n > 1, a step's tokens of every choice in one chunk (choices is a list)", (),
          variation=True, chunks_out=_choices_together),
    Quirk("one-generation-at-a-time", "generations are served one at a time, the others wait their turn (tiny "
                                      "requests do not), streams paced at 5 ms an event", (), variation=True,
          behaviour={"one_generation_at_a_time": True, "stream_seconds": 0.005}),
    Quirk("choices-reversed", "with n > 1, a regular response lists its choices last index first (each keeps "
                              "its index)", (), variation=True, body_out=_choices_reversed),
    *RESPONSES_VARIATIONS,
]

# Per-parameter quirks: the parameter silently ignored, refused with 400, or answered with 500.
# A parameter whose effect cannot be observed only gets `reject-` (ignoring it changes nothing
# observable); parameters every request needs, and those the reference itself refuses, get none.
_PARAMETRIC_SKIP = {"model", "messages", "prompt", "stream", *MODEL_UNSUPPORTED, "reasoning", "conversation"}
# /responses: every property whose effect cannot be observed is judged (responses.parameters.accepted);
# of the others, those a Responses check judges. A property no check judges gets no verdict row to move.
_RESPONSES_JUDGED = {"instructions", "max_output_tokens", "text", "previous_response_id", "store", "tool_choice"}


def _judged(p, endpoint: str) -> bool:
    return endpoint != "responses" or not p.observable or p.name in _RESPONSES_JUDGED


def _refuse_parameter(name: str, error: Callable[[], ApiError]) -> Callable:
    """request_in: refuse a body that carries `name`, where the reference's loop over the body's
    keys would meet it (a key unknown to the endpoint before it is refused as such first)."""
    def request_in(endpoint: str, body, models):
        if isinstance(body, dict):
            known = {p.name for p in load_catalogue().for_endpoint(endpoint)}
            for key in body:
                if key == name:
                    raise error()
                if key not in known:
                    break
        return body
    return request_in


def _ignore_parameter(name: str) -> Callable:
    return lambda endpoint, request, models: _without(request, name)


def _unknown(name: str) -> ApiError:
    return ApiError(400, f"Unrecognized request argument supplied: {name}")


def _crash() -> ApiError:
    return ApiError(500, "Internal Server Error", raw=True)


def parametric() -> list[Quirk]:
    params = load_catalogue().parameters
    quirks = []
    for name in dict.fromkeys(p.name for p in params):
        if name in _PARAMETRIC_SKIP:
            continue
        entries = [p for p in params if p.name == name and any(_judged(p, e) for e in p.endpoints)]
        if not entries:
            continue
        endpoints = [e for p in entries for e in p.endpoints if _judged(p, e)]
        verdict_rows = tuple(f"{e}.{name}" for e in endpoints)
        # ignored: seen only where the parameter's effect can be (`store` is observable on /responses only)
        ignored_rows = tuple(f"{e}.{name}" for p in entries if p.observable for e in p.endpoints if _judged(p, e))
        reject = _refuse_parameter(name, lambda name=name: _unknown(name))
        if all(not p.observable for p in entries):
            features = tuple(f"{e}.parameters" for e in endpoints)
            quirks.append(Quirk(f"reject-{name}", f"'{name}' is refused with 400 as an unknown parameter", features,
                                tuple((f, "rejected") for f in verdict_rows), request_in=reject))
            continue
        quirks += [
            Quirk(f"ignore-{name}", f"'{name}' is accepted and silently ignored", ignored_rows,
                  tuple((f, "ignored") for f in ignored_rows), request_valid=_ignore_parameter(name)),
            Quirk(f"reject-{name}", f"'{name}' is refused with 400 as an unknown parameter", verdict_rows,
                  tuple((f, "rejected") for f in verdict_rows), request_in=reject),
            Quirk(f"crash-{name}", f"'{name}' makes the server answer 500", verdict_rows,
                  tuple((f, "broken") for f in verdict_rows), request_in=_refuse_parameter(name, _crash)),
        ]
    return quirks
