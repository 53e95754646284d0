"""Generation of the reference server: a validated request in, choices and usage out.

The prompt as the toy model reads it, sampling, limits, stop matching, best_of, constrained
JSON and tool calls.  Where the quirk layer must change something here, it sets a field of the
frozen `Behaviour` record (server/behaviour.py) this module reads; the defaults are the reference.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from .behaviour import REFERENCE, Behaviour
from .entropy import FRESH, Entropy
from .model import PIECE, VOCAB, Drift, Generation, Sampling, ToyModel, tokenize
from .structured import Chooser, generate_value, json_text, parameters_schema, relevant, tool_function
from .validate import ApiError, message_text

@dataclasses.dataclass
class Choice:
    index: int
    pieces: list[str]  # the text of each generated token, after stop truncation
    finish_reason: str
    completion_tokens: int
    token_ids: list[int] = dataclasses.field(default_factory=list)
    steps: list[list[float]] = dataclasses.field(default_factory=list)  # distribution per generated token
    logprobs_k: int | None = None  # None: logprobs not asked for; else how many alternatives
    prefix: list[str] = dataclasses.field(default_factory=list)  # echoed prompt pieces (completions echo)
    prefix_ids: list[int] = dataclasses.field(default_factory=list)
    prefix_steps: list = dataclasses.field(default_factory=list)
    tool_calls: list[dict] = dataclasses.field(default_factory=list)  # [{id, name, arguments}]
    function_call: dict | None = None  # the deprecated form: {name, arguments}

    @property
    def calls(self) -> bool:
        return bool(self.tool_calls or self.function_call)

    @property
    def text(self) -> str:
        return "".join(self.prefix) + "".join(self.pieces)

    def token_entries(self) -> list[tuple[str, int, list[float] | None]]:
        """(token text, token id, its distribution) for every token in `text`, echoed ones first."""
        echoed = list(zip(self.prefix, self.prefix_ids, self.prefix_steps))
        return echoed + list(zip(self.pieces, self.token_ids, self.steps))



def _apply_stop(pieces: list[str], stops: list[str], keep: bool = False, start: int = 0,
                within_tokens: bool = False) -> tuple[list[str], int] | None:
    """Cut at the first stop sequence to appear; return (pieces up to it, tokens generated).

    `keep` leaves the stop sequence in the output; `start` (where the search begins) and
    `within_tokens` (only sequences inside one token match) make it miss what some real servers'
    matchers miss (Behaviour.stop_*; the reference searches everything and cuts before).
    """
    text = "".join(pieces)
    if within_tokens:
        found = _found_in_one_token(pieces, stops)
    else:
        found = [(text.find(s, start), s) for s in stops if s and s in text[start:]]
    if not found:
        return None
    # Generation is checked after every token, so the sequence that completes first wins.
    end_first = min(idx + len(s) for idx, s in found)
    cut = end_first if keep else min(idx for idx, s in found if idx + len(s) <= end_first)
    kept, length, tokens = [], 0, 0
    for piece in pieces:
        if length >= end_first:
            break
        tokens += 1
        if length < cut:
            kept.append(piece[: cut - length])
        length += len(piece)
    return kept, tokens


def _found_in_one_token(pieces: list[str], stops: list[str]) -> list[tuple[int, str]]:
    """Where each stop sequence occurs inside a single token (Behaviour.stop_within_token_only)."""
    found, offset = [], 0
    for piece in pieces:
        found += [(offset + piece.find(s), s) for s in stops if s and s in piece]
        offset += len(piece)
    return found


def _withhold_stop_prefix(pieces: list[str], stops: list[str]) -> list[str]:
    """Drop the end of the text that could begin a stop sequence (Behaviour.stop_prefix_withheld_at_limit:
    a server that holds such text back while it waits for the rest, and never sends it)."""
    text = "".join(pieces)
    held = max((n for s in stops for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
    keep, kept, length = len(text) - held, [], 0
    for piece in pieces:
        if length < keep:
            kept.append(piece[: keep - length])
        length += len(piece)
    return kept


class Generator:
    """Turns a validated request into choices and usage, as `behaviour` says (default: the reference)."""

    def __init__(self, models: dict[str, ToyModel], behaviour: Behaviour = REFERENCE, entropy: Entropy = FRESH):
        self.models = models
        self.behaviour = behaviour
        self.entropy = entropy  # unseeded sampling and call ids
        self.drift = Drift(behaviour.drift) if behaviour.drift else None

    def render_chat(self, body: dict) -> str:
        """The conversation as the toy model reads it: tool definitions, then every message."""
        lines = [f"tools: {json.dumps(body[key], sort_keys=True)}" for key in ("tools", "functions") if body.get(key)]
        b = self.behaviour
        messages = body["messages"][-1:] if b.prompt_last_message_only else body["messages"]
        for m in messages:
            if m.get("role") in b.prompt_dropped_roles:
                continue  # a chat template without the role renders nothing for it
            calls = [c["function"] for c in m.get("tool_calls") or []]
            if m.get("function_call"):
                calls.append(m["function_call"])
            called = "".join(f" [call {c['name']}({c['arguments']})]" for c in calls)
            if b.content_parts_first_only and isinstance(m.get("content"), list):
                m = {**m, "content": m["content"][:1]}
            lines.append(f"{m['role']}: {message_text(m)}{called}")
        return "\n".join(lines) + "\nassistant:"

    def prompts(self, endpoint: str, body: dict) -> list[list[int]]:
        if endpoint == "chat":
            return [tokenize(self.render_chat(body))]
        if self.behaviour.prompt_first_token_only:
            return [ids[:1] for ids in self._completion_prompts(body)]
        return self._completion_prompts(body)

    @staticmethod
    def _completion_prompts(body: dict) -> list[list[int]]:
        prompt = body["prompt"]
        if isinstance(prompt, str):
            return [tokenize(prompt)]
        if all(isinstance(x, int) for x in prompt):
            return [list(prompt)]
        return [tokenize(x) if isinstance(x, str) else list(x) for x in prompt]

    @staticmethod
    def prompt_pieces(body: dict, index: int, prompt_ids: list[int]) -> list[str]:
        """The prompt's text, token by token, for echo."""
        prompt = body["prompt"]
        if isinstance(prompt, str):
            return PIECE.findall(prompt)
        item = prompt if all(isinstance(x, int) for x in prompt) else prompt[index]
        if isinstance(item, str):
            return PIECE.findall(item)
        return [VOCAB[t] if 0 < t < len(VOCAB) else "" for t in prompt_ids]

    def _sampling(self, body: dict) -> Sampling:
        b = self.behaviour
        temperature = 1.0 if body.get("temperature") is None else float(body["temperature"])
        top_p = 1.0 if body.get("top_p") is None else float(body["top_p"])
        if b.greedy == "always" or (b.greedy == "with-seed" and body.get("seed") is not None):
            temperature = 0.0
        elif b.zero_temperature_samples and temperature == 0:
            temperature = 1.0
        return Sampling(
            temperature=temperature,
            top_p=top_p,
            presence_penalty=float(body.get("presence_penalty") or 0.0),
            frequency_penalty=float(body.get("frequency_penalty") or 0.0),
            repetition_penalty=float(body.get("repetition_penalty") or 1.0),
            logit_bias=tuple((int(k), float(v)) for k, v in (body.get("logit_bias") or {}).items()),
            seed=body.get("seed"),
        )

    def _stops(self, body: dict) -> list[str]:
        stop = body.get("stop")
        return [stop] if isinstance(stop, str) else list(stop or [])

    def _finish(self, reason: str, by_stop_sequence: bool = False) -> str:
        b = self.behaviour
        if reason == "stop":
            return b.finish_stop_sequence if by_stop_sequence else b.finish_natural
        return b.finish_length

    def _plan(self, body: dict) -> tuple[str, Any]:
        """What the reply will be: ("text", None), ("json", schema), ("tools" | "functions", [function, ...]).

        `auto` calls the functions whose name or description the last user message mentions (a
        stand-in for a model's judgement); `required` calls those or else the first; a named
        choice calls that one.  Without parallel tool calls, and always for `functions`, one call.
        """
        last = body["messages"][-1]
        user_turn = last.get("role") == "user"
        for kind, list_name, choice_name in (("tools", "tools", "tool_choice"), ("functions", "functions",
                                                                                  "function_call")):
            functions = [tool_function(t) for t in body.get(list_name) or []]
            if not functions:
                continue
            choice = body.get(choice_name) or "auto"
            if isinstance(choice, dict):
                wanted = (choice.get("function") or {}).get("name") if kind == "tools" else choice.get("name")
                return kind, [f for f in functions if f["name"] == wanted][:1]
            picked = relevant(functions, message_text(last)) if user_turn else []
            if choice == "required":
                picked = picked or functions[:1]
            if choice != "none" and picked:
                single = kind == "functions" or body.get("parallel_tool_calls") is False
                return kind, picked[:1] if single else picked
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_object":
            return "json", {"type": "object"}
        if response_format.get("type") == "json_schema":
            return "json", response_format["json_schema"].get("schema") or {"type": "object"}
        return "text", None

    def _json(self, schema: dict, model: ToyModel, prompt_ids: list[int], max_new: int, sampling: Sampling,
              rng: random.Random, want_logprobs: bool) -> Generation:
        """JSON valid against `schema`, cut at max_new tokens like any other output."""
        text = json_text(generate_value(schema, Chooser(model, prompt_ids, sampling, rng)))
        if self.behaviour.json_fenced:
            text = f"```json\n{text}\n```"
        pieces = PIECE.findall(text)
        token_ids = [tokenize(piece)[0] for piece in pieces]
        done = len(pieces) <= max_new
        pieces, token_ids = pieces[:max_new], token_ids[:max_new]
        steps = model.distributions(prompt_ids, token_ids) if want_logprobs else []
        return Generation(token_ids, ended_naturally=done, logprobs=steps, text_pieces=pieces)

    def _call(self, plan: tuple[str, list[dict]], model: ToyModel, prompt_ids: list[int], sampling: Sampling,
              rng: random.Random, index: int) -> Choice:
        """A choice that calls functions, with arguments generated against their parameter schemas."""
        b = self.behaviour
        kind, functions = plan
        calls = []
        for function in functions:
            schema = parameters_schema(function) if b.tool_arguments_follow_schema else {"type": "object"}
            arguments = generate_value(schema, Chooser(model, prompt_ids + tokenize(function["name"]), sampling, rng))
            calls.append({"id": "call_" + self.entropy.hex(24), "name": function["name"],
                          "arguments": arguments if b.tool_arguments_as_object else json_text(arguments)})
        tokens = sum(len(PIECE.findall(c["name"] + json_text(c["arguments"]))) for c in calls)
        if kind == "functions" and not b.functions_as_tool_calls:
            return Choice(index=index, pieces=[], finish_reason="function_call", completion_tokens=tokens,
                          function_call={"name": calls[0]["name"], "arguments": calls[0]["arguments"]})
        if b.tool_calls_as_content:
            text = "".join(f"<tool_call>{json_text({'name': c['name'], 'arguments': c['arguments']})}</tool_call>"
                           for c in calls)
            return Choice(index=index, pieces=PIECE.findall(text), finish_reason="stop", completion_tokens=tokens)
        return Choice(index=index, pieces=[], finish_reason=b.finish_tool_calls, completion_tokens=tokens, tool_calls=calls)

    def generate(self, endpoint: str, body: dict) -> tuple[list[Choice], dict]:
        b = self.behaviour
        model = self.models[body["model"]]
        n = max(0, body.get("n") or 1)
        stops = self._stops(body)
        sampling = self._sampling(body)
        # 0 is a limit (completions allow it: with echo, the prompt back and nothing generated).
        limit = next((body[k] for k in ("max_completion_tokens", "max_tokens") if body.get(k) is not None), None)
        if limit is None and endpoint == "completions":
            limit = 16  # OpenAI's default for the completions endpoint
        if endpoint == "chat":
            k = (body.get("top_logprobs") or 0) if body.get("logprobs") else None
        else:
            k = body.get("logprobs")
        if k is not None and b.top_logprobs_cap is not None:
            k = min(k, b.top_logprobs_cap)
        if k == 0 and b.logprobs_zero_off:
            k = None
        echo = endpoint == "completions" and bool(body.get("echo"))
        plan = self._plan(body) if endpoint == "chat" else ("text", None)
        candidates = max(n, body.get("best_of") or 0) if endpoint == "completions" else n
        rank = k is not None or candidates > n  # best_of ranks candidates by their log probabilities
        choices: list[Choice] = []
        prompt_tokens = billed_tokens = 0
        drift = self.drift.occurrence(body) if self.drift else None
        for p_index, prompt_ids in enumerate(self.prompts(endpoint, body)):
            prefix = self.prompt_pieces(body, p_index, prompt_ids) if echo else []
            prompt_tokens += len(prompt_ids)
            if b.long_prompt_truncated:
                prompt_ids = prompt_ids[-model.context_window // 2:]
            room = model.context_window - len(prompt_ids)
            if b.context_overflow_truncated and limit is not None and 0 < room < limit:
                limit = room  # a real engine's way: the output is cut where the context ends
            if limit is not None and limit > room or room <= 0:
                raise ApiError(400, f"This model's maximum context length is {model.context_window} tokens. "
                                    f"However, you requested {len(prompt_ids) + (limit or 0)} tokens "
                                    f"({len(prompt_ids)} in the prompt, {limit or 0} for the completion).",
                               param="messages" if endpoint == "chat" else "prompt",
                               code="context_length_exceeded")
            max_new = room if limit is None else max(0, limit) + b.extra_tokens
            if echo and limit == 0 and b.echo_zero_generates:
                max_new = b.echo_zero_generates  # a real engine's way: generated (and counted) even at 0
            batch: list[Choice] = []
            for j in range(candidates):
                if sampling.seed is not None:
                    rng = random.Random(f"{sampling.seed}:{p_index}:{j}")
                else:
                    rng = self.entropy.rng()
                if plan[0] in ("tools", "functions"):
                    batch.append(self._call(plan, model, prompt_ids, sampling, rng, 0))
                    continue
                if plan[0] == "json":
                    gen = self._json(plan[1], model, prompt_ids, max_new, sampling, rng, want_logprobs=rank)
                else:
                    gen = model.generate(prompt_ids, max_new, sampling, rng, want_logprobs=rank,
                                         drift_at=self.drift.step(drift, prompt_ids, p_index, j) if drift else None)
                pieces = gen.pieces if b.spaces else [p.lstrip(" ") for p in gen.pieces]
                finish = self._finish("stop" if gen.ended_naturally else "length")
                tokens = len(pieces)
                unchecked_last = not gen.ended_naturally and b.stop_unchecked_last_at_limit
                cut = _apply_stop(pieces[:-1] if unchecked_last else pieces, stops, keep=b.stop_kept,
                                  start=len(pieces[0]) if pieces and b.stop_skips_first_token else 0,
                                  within_tokens=b.stop_within_token_only)
                if cut is not None:
                    pieces, tokens = cut
                    finish = self._finish("stop", by_stop_sequence=True)
                elif not gen.ended_naturally and b.stop_prefix_withheld_at_limit:
                    pieces = _withhold_stop_prefix(pieces, stops)
                batch.append(Choice(
                    index=0, pieces=pieces, finish_reason=finish, completion_tokens=tokens,
                    token_ids=gen.token_ids[:len(pieces)], steps=gen.logprobs[:len(pieces)], logprobs_k=k,
                    prefix=prefix, prefix_ids=prompt_ids[:len(prefix)] if prefix else [],
                    prefix_steps=model.prompt_logprobs(prompt_ids)[:len(prefix)] if prefix and k is not None else
                    [None] * len(prefix)))
            billed_tokens += sum(c.completion_tokens for c in batch)
            if candidates > n:  # best_of: keep the n with the highest log probability per token
                batch = sorted(batch, key=_mean_logprob, reverse=True)[:n]
            for c in batch:
                c.index = len(choices)
                if k is None:
                    c.steps = []
                choices.append(c)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": billed_tokens,
                 "total_tokens": prompt_tokens + billed_tokens}
        return choices, usage


def _mean_logprob(choice: Choice) -> float:
    values = [dist[tid] for tid, dist in zip(choice.token_ids, choice.steps)]
    return sum(values) / len(values) if values else 0.0

