"""Request validation and response bodies of the reference server, in OpenAI's shapes.

Kept apart from the HTTP plumbing (server/http.py) so each piece reads on its own.  The ranges
come from the parameter catalogue, whose facts are read from OpenAI's OpenAPI document.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
import uuid
from typing import Any, Iterator

from ..config.catalogue import Parameter, load_catalogue
from .model import _PIECE, VOCAB, Drift, Generation, Sampling, ToyModel, tokenize
from .structured import (
    NAME_PATTERN,
    Chooser,
    SchemaError,
    check_schema,
    generate_value,
    json_text,
    parameters_schema,
    relevant,
    tool_function,
)

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_CHOICES = ("none", "auto", "required")
# Parameters OpenAI refuses for a text-only, non-reasoning model such as the toy model.
MODEL_UNSUPPORTED = ("reasoning_effort", "verbosity", "web_search_options", "audio")


class ApiError(Exception):
    """An error answered in OpenAI's envelope."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error", raw: bool = False):
        super().__init__(message)
        self.status = status
        self.raw = raw  # a crash: plain text, no envelope
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _invalid_type(name: str, expected: str, value: Any) -> ApiError:
    return ApiError(400, f"Invalid type for '{name}': expected {expected}, but got {_type_name(value)} instead.",
                    param=name, code="invalid_type")


def _check_range(p: Parameter, value: float, name: str) -> None:
    kind = "integer" if p.type == "integer" else "decimal"
    if p.minimum is not None and value < p.minimum:
        raise ApiError(400, f"Invalid '{name}': {kind} below minimum value. Expected a value >= {p.minimum:g}, "
                            f"but got {value} instead.", param=name, code=f"{kind}_below_min_value")
    if p.maximum is not None and value > p.maximum:
        raise ApiError(400, f"Invalid '{name}': {kind} above maximum value. Expected a value <= {p.maximum:g}, "
                            f"but got {value} instead.", param=name, code=f"{kind}_above_max_value")
    if p.exclusive_minimum is not None and value <= p.exclusive_minimum:
        raise ApiError(400, f"Invalid '{name}': expected a value > {p.exclusive_minimum:g}, but got {value} instead.",
                       param=name, code="invalid_value")


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                            "but got an empty array instead.", param="messages", code="empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid_type(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise ApiError(400, f"Invalid value: '{role}'. Supported values are: "
                                + ", ".join(f"'{r}'" for r in CHAT_ROLES) + ".",
                           param=f"messages[{i}].role", code="invalid_value")
        content = message.get("content")
        if role == "assistant" and message.get("tool_calls") is not None:
            _validate_tool_calls(message["tool_calls"], f"messages[{i}].tool_calls")
        if role == "assistant" and message.get("function_call") is not None:
            _validate_tool_calls([{"id": "", "function": message["function_call"]}], f"messages[{i}].function_call")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise ApiError(400, f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                           param=f"messages[{i}].tool_call_id", code="missing_required_parameter")
        if role == "function" and not isinstance(message.get("name"), str):
            raise ApiError(400, f"Missing required parameter: 'messages[{i}].name'.", param=f"messages[{i}].name",
                           code="missing_required_parameter")
        if content is None and role == "assistant":
            continue
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                    raise ApiError(400, f"Invalid content part at 'messages[{i}].content[{j}]': only text parts "
                                        "are supported by this server.", param=f"messages[{i}].content[{j}]",
                                   code="invalid_value")
        elif not isinstance(content, str):
            raise _invalid_type(f"messages[{i}].content", "a string or an array of content parts", content)


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _validate_tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise _invalid_type(where, "an array", calls)
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(call.get("id") if isinstance(call, dict) else None, str) and isinstance(function, dict)
                and isinstance(function.get("name"), str) and isinstance(function.get("arguments"), str)):
            raise ApiError(400, f"Invalid '{where}[{j}]': expected {{id, type: 'function', function: {{name, "
                                "arguments}}}.", param=f"{where}[{j}]", code="invalid_value")


def _validate_function(function: Any, where: str) -> None:
    """A function definition of `tools[i].function` or of the deprecated `functions[i]`."""
    if not isinstance(function, dict):
        raise _invalid_type(where, "an object", function)
    name = function.get("name")
    if not isinstance(name, str):
        raise ApiError(400, f"Missing required parameter: '{where}.name'.", param=f"{where}.name",
                       code="missing_required_parameter")
    if not NAME_PATTERN.match(name):
        raise ApiError(400, f"Invalid '{where}.name': string does not match pattern. Expected a string that "
                            "matches the pattern '^[a-zA-Z0-9_-]+$'.", param=f"{where}.name", code="invalid_value")
    if function.get("parameters") is not None:
        try:
            check_schema(function["parameters"], strict=function.get("strict") is True)
        except SchemaError as exc:
            raise ApiError(400, f"Invalid schema for function '{name}': {exc}", param=f"{where}.parameters",
                           code="invalid_function_parameters") from None


def _validate_tools(tools: Any, name: str) -> None:
    if not isinstance(tools, list):
        raise _invalid_type(name, "an array", tools)
    for i, tool in enumerate(tools):
        if name == "functions":
            _validate_function(tool, f"functions[{i}]")
            continue
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ApiError(400, f"Invalid value for 'tools[{i}].type': expected 'function'.",
                           param=f"tools[{i}].type", code="invalid_value")
        _validate_function(tool.get("function"), f"tools[{i}].function")


def _validate_choice(value: Any, name: str) -> None:
    """tool_choice: none | auto | required | {type: function, function: {name}}; function_call: none | auto | {name}."""
    if isinstance(value, str):
        allowed = TOOL_CHOICES if name == "tool_choice" else TOOL_CHOICES[:2]
        if value not in allowed:
            raise ApiError(400, f"Invalid value: '{value}'. Supported values are: "
                                + ", ".join(f"'{v}'" for v in allowed) + " or a named function.",
                           param=name, code="invalid_value")
        return
    named = (value.get("function") if name == "tool_choice" else value) if isinstance(value, dict) else None
    if not (isinstance(named, dict) and isinstance(named.get("name"), str)):
        raise _invalid_type(name, "a string or a named function", value)


def _validate_response_format(value: Any) -> None:
    if not isinstance(value, dict):
        raise _invalid_type("response_format", "an object", value)
    kind = value.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise ApiError(400, f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
                            "'json_schema'.", param="response_format.type", code="invalid_value")
    if kind != "json_schema":
        return
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ApiError(400, "Missing required parameter: 'response_format.json_schema.name'.",
                       param="response_format.json_schema.name", code="missing_required_parameter")
    if not NAME_PATTERN.match(spec["name"]):
        raise ApiError(400, "Invalid 'response_format.json_schema.name': string does not match pattern.",
                       param="response_format.json_schema.name", code="invalid_value")
    try:
        check_schema(spec.get("schema") or {"type": "object"}, strict=spec.get("strict") is True)
    except SchemaError as exc:
        raise ApiError(400, f"Invalid schema for response_format '{spec['name']}': {exc}",
                       param="response_format", code="invalid_json_schema") from None


def _validate_prompt(prompt: Any) -> None:
    ok = isinstance(prompt, str) or (
        isinstance(prompt, list) and prompt and (
            all(isinstance(x, str) for x in prompt)
            or all(isinstance(x, int) and not isinstance(x, bool) for x in prompt)
            or all(isinstance(x, list) and x and all(isinstance(t, int) for t in x) for x in prompt)
        )
    )
    if not ok:
        raise _invalid_type("prompt", "a string, an array of strings or an array of token arrays", prompt)


def validate_value(p: Parameter, value: Any, check_ranges: bool = True) -> None:
    name = p.name
    if p.type == "string":
        if not isinstance(value, str):
            raise _invalid_type(name, "a string", value)
    elif p.type == "boolean":
        if not isinstance(value, bool):
            raise _invalid_type(name, "a boolean", value)
    elif p.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type(name, "an integer", value)
        if check_ranges:
            _check_range(p, value, name)
    elif p.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid_type(name, "a number", value)
        if check_ranges:
            _check_range(p, value, name)
    elif p.type == "messages":
        _validate_messages(value)
    elif p.type == "prompt":
        _validate_prompt(value)
    elif p.type == "stop":
        if isinstance(value, list):
            if not all(isinstance(s, str) for s in value):
                raise _invalid_type(name, "a string or an array of strings", value)
            if check_ranges and p.max_items is not None and len(value) > p.max_items:
                raise ApiError(400, f"Invalid 'stop': array too long. Expected an array with maximum length "
                                    f"{p.max_items}, but got an array with length {len(value)} instead.",
                               param="stop", code="array_above_max_length")
        elif not isinstance(value, str):
            raise _invalid_type(name, "a string or an array of strings", value)
    elif p.type == "logit_bias":
        if not isinstance(value, dict):
            raise _invalid_type(name, "an object", value)
        for key, bias in value.items():
            if not key.lstrip("-").isdigit():
                raise ApiError(400, f"Invalid key in 'logit_bias': {key}. Keys must be token ids (integers).",
                               param="logit_bias", code="invalid_value")
            if isinstance(bias, bool) or not isinstance(bias, (int, float)):
                raise _invalid_type(f"logit_bias.{key}", "a number", bias)
            if check_ranges and not (p.minimum <= bias <= p.maximum):
                raise ApiError(400, f"Invalid 'logit_bias': value {bias} for token {key} is out of range. "
                                    f"Expected a value between {p.minimum:g} and {p.maximum:g}.",
                               param="logit_bias", code="invalid_value")
    elif p.type == "enum":
        if not isinstance(value, str):
            raise _invalid_type(name, "a string", value)
        if value not in p.values:
            raise ApiError(400, f"Invalid value: '{value}'. Supported values are: "
                                + ", ".join(f"'{v}'" for v in p.values) + ".", param=name, code="invalid_value")
    elif p.type in ("tools", "functions"):
        _validate_tools(value, name)
    elif p.type in ("tool_choice", "function_call"):
        _validate_choice(value, name)
    elif p.type == "response_format":
        _validate_response_format(value)
    elif p.type == "object":
        if not isinstance(value, dict):
            raise _invalid_type(name, "an object", value)
    elif p.type == "array":
        if not isinstance(value, list):
            raise _invalid_type(name, "an array", value)
    elif p.type == "string_map":
        if not isinstance(value, dict):
            raise _invalid_type(name, "an object", value)
        for key, item in value.items():
            if not isinstance(item, str):
                raise _invalid_type(f"{name}.{key}", "a string", item)
    elif p.type == "stream_options":
        if not isinstance(value, dict):
            raise _invalid_type(name, "an object", value)
        unknown = sorted(set(value) - {"include_usage", "include_obfuscation"})
        if unknown:
            raise ApiError(400, f"Unrecognized request argument supplied: stream_options.{unknown[0]}",
                           param="stream_options")
        if "include_usage" in value and not isinstance(value["include_usage"], bool):
            raise _invalid_type("stream_options.include_usage", "a boolean", value["include_usage"])
    else:  # pragma: no cover - the catalogue names only the types above
        raise AssertionError(f"unknown parameter type {p.type}")


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


def _top(dist: list[float], k: int) -> list[tuple[str, float]]:
    ids = sorted(range(len(dist)), key=lambda i: -dist[i])[:k]
    return [(VOCAB[i], dist[i]) for i in ids]


def chat_logprobs(entries, k: int) -> dict:
    return {"content": [
        {"token": text, "logprob": dist[tid], "bytes": list(text.encode()),
         "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in _top(dist, k)]}
        for text, tid, dist in entries], "refusal": None}


def completion_logprobs(entries, k: int, offset: int) -> dict:
    out: dict = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for text, tid, dist in entries:
        out["tokens"].append(text)
        out["token_logprobs"].append(None if dist is None else dist[tid])
        out["top_logprobs"].append(None if dist is None else dict(_top(dist, k)))
        out["text_offset"].append(offset)
        offset += len(text)
    return out


def _apply_stop(pieces: list[str], stops: list[str], keep: bool = False, start: int = 0,
                within_tokens: bool = False) -> tuple[list[str], int] | None:
    """Cut at the first stop sequence to appear; return (pieces up to it, tokens generated).

    `keep` is the quirk that leaves the stop sequence in the output; `start` (a quirk: where the
    search begins) and `within_tokens` (a quirk: only sequences inside one token match) make it
    miss the sequences a real server's matcher misses.
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
    """Where each stop sequence occurs inside a single token (quirk stop-across-tokens-missed)."""
    found, offset = [], 0
    for piece in pieces:
        found += [(offset + piece.find(s), s) for s in stops if s and s in piece]
        offset += len(piece)
    return found


def _withhold_stop_prefix(pieces: list[str], stops: list[str]) -> list[str]:
    """Drop the end of the text that could begin a stop sequence (quirk stop-prefix-withheld-at-limit:
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
    """Turns a validated request into choices and usage; `quirks` make it deviate on purpose."""

    def __init__(self, models: dict[str, ToyModel], quirks: frozenset[str] = frozenset()):
        self.models = models
        self.quirks = quirks
        self.catalogue = load_catalogue()
        self.drift = Drift() if "greedy-drift" in quirks else None

    def validate(self, endpoint: str, body: Any) -> dict:
        """Validate a request body; returns the body the generator will act on."""
        q = self.quirks
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        params = {p.name: p for p in self.catalogue.for_endpoint(endpoint)}
        for key in body:
            if f"reject-{key}" in q:
                raise ApiError(400, f"Unrecognized request argument supplied: {key}")
            if f"crash-{key}" in q:
                raise ApiError(500, "Internal Server Error", raw=True)
            if key not in params and "unknown-parameters-accepted" not in q:
                raise ApiError(400, f"Unrecognized request argument supplied: {key}")
        if body.get("model") is None and "missing-model-defaulted" in q:
            body = {**body, "model": next(iter(self.models))}
        for p in params.values():
            if p.required and body.get(p.name) is None:
                raise ApiError(400, f"Missing required parameter: '{p.name}'.", param=p.name,
                               code="missing_required_parameter")
        for name, value in body.items():
            if value is not None and name in params:
                validate_value(params[name], value, check_ranges="out-of-range-accepted" not in q)
        self._model_rules(endpoint, body)
        if (endpoint == "chat" and (body.get("response_format") or {}).get("type") == "json_object"
                and "json-word-unchecked" not in q
                and not any("json" in message_text(m).lower() for m in body["messages"])):
            raise ApiError(400, "'messages' must contain the word 'json' in some form, to use 'response_format' of "
                                "type 'json_object'.", param="messages")
        if body.get("stream_options") is not None and not body.get("stream"):
            raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           param="stream_options", code="invalid_value")
        if endpoint == "chat":
            refused_roles = {"system", "assistant"} if "system-role-rejected" in q else set()
            if "developer-role-rejected" in q:
                refused_roles.add("developer")
            refused_roles |= {role for role in ("tool", "function") if f"{role}-role-rejected" in q}
            for i, m in enumerate(body["messages"]):
                if m.get("role") in refused_roles:
                    raise ApiError(400, "Conversation roles must alternate user/assistant/user/assistant/...",
                                   param=f"messages[{i}].role")
                if "content-parts-rejected" in q and isinstance(m.get("content"), list):
                    raise ApiError(400, "Input should be a valid string", param=f"messages[{i}].content")
        if body["model"] not in self.models:
            if "unknown-model-400" in q:
                raise ApiError(400, f"The model `{body['model']}` does not exist.", param="model")
            raise ApiError(404, f"The model `{body['model']}` does not exist or you do not have access to it.",
                           code=None if "unknown-model-code-null" in q else "model_not_found")
        ignored = {k for k in body if f"ignore-{k}" in q}
        if "stop-string-ignored" in q and isinstance(body.get("stop"), str):
            ignored.add("stop")
        return {k: v for k, v in body.items() if k not in ignored}

    def _model_rules(self, endpoint: str, body: dict) -> None:
        """What OpenAI refuses for this kind of model, and combinations it refuses."""
        for name in MODEL_UNSUPPORTED:
            if body.get(name) is not None:
                raise ApiError(400, f"Unsupported parameter: '{name}' is not supported with this model.",
                               param=name, code="unsupported_parameter")
        if "audio" in (body.get("modalities") or []):
            raise ApiError(400, "This model does not support the 'audio' modality.", param="modalities",
                           code="unsupported_value")
        if endpoint == "chat" and body.get("top_logprobs") is not None and not body.get("logprobs"):
            raise ApiError(400, "'logprobs' must be set to true when 'top_logprobs' is used.", param="top_logprobs",
                           code="invalid_value")
        if endpoint == "chat":
            Generator._tool_rules(body)
        if "n-refused-at-greedy" in self.quirks and (body.get("n") or 1) > 1 and body.get("temperature") == 0:
            raise ApiError(400, "n > 1 is not supported with greedy sampling (temperature 0).", param="n",
                           code="invalid_value")
        best_of = body.get("best_of")
        if endpoint == "completions" and best_of is not None and "best-of-unchecked" not in self.quirks:
            if best_of < (body.get("n") or 1):
                raise ApiError(400, "best_of must be greater than or equal to n.", param="best_of",
                               code="invalid_value")
            if best_of > 1 and body.get("stream"):
                raise ApiError(400, "Cannot stream results with best_of greater than 1.", param="best_of",
                               code="invalid_value")

    @staticmethod
    def _tool_rules(body: dict) -> None:
        """What OpenAI refuses about tools, functions and JSON output beyond each value's own shape."""
        for choice, list_name in (("tool_choice", "tools"), ("parallel_tool_calls", "tools"),
                                  ("function_call", "functions")):
            if body.get(choice) is not None and not body.get(list_name):
                raise ApiError(400, f"Invalid value for '{choice}': '{choice}' is only allowed when '{list_name}' "
                                    "are specified.", param=choice, code="invalid_value")
        for choice, list_name in (("tool_choice", "tools"), ("function_call", "functions")):
            value = body.get(choice)
            if isinstance(value, dict):
                wanted = (value.get("function") or {}).get("name") if choice == "tool_choice" else value.get("name")
                names = [tool_function(t).get("name") for t in body[list_name]]
                if wanted not in names:
                    raise ApiError(400, f"Invalid value for '{choice}': function '{wanted}' is not among the "
                                        f"'{list_name}'.", param=choice, code="invalid_value")
        answered = {call["id"] for m in body["messages"] for call in (m.get("tool_calls") or [])}
        for i, message in enumerate(body["messages"]):
            if message.get("role") == "tool" and message.get("tool_call_id") not in answered:
                raise ApiError(400, "Invalid parameter: messages with role 'tool' must be a response to a preceding "
                                    "message with 'tool_calls'.", param=f"messages[{i}].role", code="invalid_value")

    def render_chat(self, body: dict) -> str:
        """The conversation as the toy model reads it: tool definitions, then every message."""
        lines = [f"tools: {json.dumps(body[key], sort_keys=True)}" for key in ("tools", "functions") if body.get(key)]
        messages = body["messages"][-1:] if "messages-last-only" in self.quirks else body["messages"]
        for m in messages:
            if m.get("role") == "tool" and "tool-message-dropped" in self.quirks:
                continue
            if m.get("role") == "developer" and "developer-role-dropped" in self.quirks:
                continue  # a chat template without the role renders nothing for it
            calls = [c["function"] for c in m.get("tool_calls") or []]
            if m.get("function_call"):
                calls.append(m["function_call"])
            called = "".join(f" [call {c['name']}({c['arguments']})]" for c in calls)
            lines.append(f"{m['role']}: {message_text(m)}{called}")
        return "\n".join(lines) + "\nassistant:"

    def prompts(self, endpoint: str, body: dict) -> list[list[int]]:
        if endpoint == "chat":
            return [tokenize(self.render_chat(body))]
        prompt = body["prompt"]
        if isinstance(prompt, str):
            return [tokenize(prompt)]
        if all(isinstance(x, int) for x in prompt):
            return [list(prompt)]
        prompts = [tokenize(x) if isinstance(x, str) else list(x) for x in prompt]
        return prompts[:1] if "prompt-list-first-only" in self.quirks else prompts

    @staticmethod
    def prompt_pieces(body: dict, index: int, prompt_ids: list[int]) -> list[str]:
        """The prompt's text, token by token, for echo."""
        prompt = body["prompt"]
        if isinstance(prompt, str):
            return _PIECE.findall(prompt)
        item = prompt if all(isinstance(x, int) for x in prompt) else prompt[index]
        if isinstance(item, str):
            return _PIECE.findall(item)
        return [VOCAB[t] if 0 < t < len(VOCAB) else "" for t in prompt_ids]

    def _sampling(self, body: dict) -> Sampling:
        q = self.quirks
        temperature = 1.0 if body.get("temperature") is None else float(body["temperature"])
        top_p = 1.0 if body.get("top_p") is None else float(body["top_p"])
        if "always-greedy" in q or ("seed-forces-greedy" in q and body.get("seed") is not None):
            temperature = 0.0
        elif "greedy-not-repeatable" in q and temperature == 0:
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
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        return stops[:1] if "stop-first-only" in self.quirks else stops

    def _finish(self, reason: str, by_stop_sequence: bool = False) -> str:
        q = self.quirks
        if "finish-reason-tgi" in q and reason == "stop":
            return "stop_sequence" if by_stop_sequence else "eos_token"
        if "finish-stop-on-length" in q and reason == "length":
            return "stop"
        return reason

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
            schema = response_format["json_schema"].get("schema") or {"type": "object"}
            if "json-schema-loose" in self.quirks:
                schema = {"type": "object"}
            return "json", schema
        return "text", None

    def _json(self, schema: dict, model: ToyModel, prompt_ids: list[int], max_new: int, sampling: Sampling,
              rng: random.Random, want_logprobs: bool) -> Generation:
        """JSON valid against `schema`, cut at max_new tokens like any other output."""
        text = json_text(generate_value(schema, Chooser(model, prompt_ids, sampling, rng)))
        if "json-fenced" in self.quirks:
            text = f"```json\n{text}\n```"
        pieces = _PIECE.findall(text)
        token_ids = [tokenize(piece)[0] for piece in pieces]
        done = len(pieces) <= max_new
        pieces, token_ids = pieces[:max_new], token_ids[:max_new]
        steps = model.distributions(prompt_ids, token_ids) if want_logprobs else []
        return Generation(token_ids, ended_naturally=done, logprobs=steps, text_pieces=pieces)

    def _call(self, plan: tuple[str, list[dict]], model: ToyModel, prompt_ids: list[int], sampling: Sampling,
              rng: random.Random, index: int) -> Choice:
        """A choice that calls functions, with arguments generated against their parameter schemas."""
        q = self.quirks
        kind, functions = plan
        calls = []
        for function in functions:
            schema = {"type": "object"} if "tool-arguments-loose" in q else parameters_schema(function)
            arguments = generate_value(schema, Chooser(model, prompt_ids + tokenize(function["name"]), sampling, rng))
            calls.append({"id": "call_" + uuid.uuid4().hex[:24], "name": function["name"],
                          "arguments": arguments if "tool-arguments-object" in q else json_text(arguments)})
        tokens = sum(len(_PIECE.findall(c["name"] + json_text(c["arguments"]))) for c in calls)
        if kind == "functions" and "functions-as-tool-calls" not in q:
            return Choice(index=index, pieces=[], finish_reason="function_call", completion_tokens=tokens,
                          function_call={"name": calls[0]["name"], "arguments": calls[0]["arguments"]})
        if "tool-calls-as-content" in q:
            text = "".join(f"<tool_call>{json_text({'name': c['name'], 'arguments': c['arguments']})}</tool_call>"
                           for c in calls)
            return Choice(index=index, pieces=_PIECE.findall(text), finish_reason="stop", completion_tokens=tokens)
        finish = "stop" if "tool-finish-stop" in q else "tool_calls"
        return Choice(index=index, pieces=[], finish_reason=finish, completion_tokens=tokens, tool_calls=calls)

    def generate(self, endpoint: str, body: dict) -> tuple[list[Choice], dict]:
        q = self.quirks
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
        if k is not None and "top-logprobs-capped" in q:
            k = min(k, 5)
        if k == 0 and "logprobs-zero-falsy" in q:
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
            if "context-truncated" in q:
                prompt_ids = prompt_ids[-model.context_window // 2:]
            room = model.context_window - len(prompt_ids)
            if "context-overflow-truncated" in q and limit is not None and 0 < room < limit:
                limit = room  # a real engine's way: the output is cut where the context ends
            if limit is not None and limit > room or room <= 0:
                raise ApiError(400, f"This model's maximum context length is {model.context_window} tokens. "
                                    f"However, you requested {len(prompt_ids) + (limit or 0)} tokens "
                                    f"({len(prompt_ids)} in the prompt, {limit or 0} for the completion).",
                               param="messages" if endpoint == "chat" else "prompt",
                               code="context_length_exceeded")
            max_new = room if limit is None else max(0, limit) + ("max-tokens-off-by-one" in q)
            if echo and limit == 0 and "echo-zero-counts-token" in q:
                max_new = 1  # a real engine's way: one token generated (and counted) even at max_tokens 0
            batch: list[Choice] = []
            for j in range(candidates):
                if sampling.seed is not None:
                    rng = random.Random(f"{sampling.seed}:{p_index}:{j}")
                else:
                    rng = random.Random(os.urandom(16))
                if plan[0] in ("tools", "functions"):
                    batch.append(self._call(plan, model, prompt_ids, sampling, rng, 0))
                    continue
                if plan[0] == "json":
                    gen = self._json(plan[1], model, prompt_ids, max_new, sampling, rng, want_logprobs=rank)
                else:
                    gen = model.generate(prompt_ids, max_new, sampling, rng, want_logprobs=rank,
                                         drift_at=self.drift.step(drift, prompt_ids, p_index, j) if drift else None)
                pieces = [p.lstrip(" ") for p in gen.pieces] if "no-spaces" in q else gen.pieces
                finish = self._finish("stop" if gen.ended_naturally else "length")
                tokens = len(pieces)
                # Quirks of stop matching: the last token at the limit, or the first token, is not searched.
                unchecked_last = not gen.ended_naturally and "stop-unchecked-at-limit" in q
                cut = _apply_stop(pieces[:-1] if unchecked_last else pieces, stops, keep="stop-kept" in q,
                                  start=len(pieces[0]) if pieces and "stop-ignored-at-start" in q else 0,
                                  within_tokens="stop-across-tokens-missed" in q)
                if cut is not None:
                    pieces, tokens = cut
                    finish = self._finish("stop", by_stop_sequence=True)
                elif not gen.ended_naturally and "stop-prefix-withheld-at-limit" in q:
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
        completion_tokens = billed_tokens
        if "usage-prompt-zero" in q:
            prompt_tokens = 0
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens + ("usage-miscounted" in q)}
        if "usage-details" in q:
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0,
                                                  "accepted_prediction_tokens": 0,
                                                  "rejected_prediction_tokens": 0}
        return choices, usage


class Responses:
    """Response bodies and stream events, in OpenAI's shapes unless a quirk says otherwise."""

    def __init__(self, quirks: frozenset[str] = frozenset()):
        self.quirks = quirks

    def _base(self, endpoint: str, model: str) -> dict:
        q = self.quirks
        base: dict = {"id": completion_id(endpoint),
                      "created": time.time() if "created-float" in q else int(time.time()),
                      "model": "some-other-model" if "model-echo-wrong" in q else model}
        if "optional-fields-absent" not in q:
            base["system_fingerprint"] = f"fp_{model}"
        if "extra-fields" in q:
            base["x_backend"] = {"node": "ref-1", "latency_ms": 3}
        return base

    def _choice_extras(self, endpoint: str, choice: Choice | None = None, entries=None, offset: int = 0) -> dict:
        """logprobs (when asked for, or null) and the fields the variation quirks add or drop."""
        extras: dict = {}
        if choice is not None and choice.logprobs_k is not None:
            entries = choice.token_entries() if entries is None else entries
            extras["logprobs"] = (chat_logprobs(entries, choice.logprobs_k) if endpoint == "chat"
                                  else completion_logprobs(entries, choice.logprobs_k, offset))
        elif "optional-fields-absent" not in self.quirks:
            extras["logprobs"] = None
        if "extra-fields" in self.quirks:
            extras["stop_reason"] = None
        return extras

    def tool_call(self, call: dict, index: int | None = None, with_arguments: bool = True) -> dict:
        """One entry of message.tool_calls, or (with an index) the first delta of a streamed one."""
        q = self.quirks
        out: dict = {} if index is None or "stream-tool-call-no-index" in q else {"index": index}
        if "tool-call-no-id" not in q:
            out["id"] = call["id"]
        out["type"] = "function"
        function = {"name": call["name"]} if "stream-tool-call-name-late" not in q or index is None else {}
        out["function"] = {**function, "arguments": call["arguments"] if with_arguments else ""}
        return out

    def tool_call_deltas(self, c: Choice) -> Iterator[dict]:
        """The deltas of a choice's calls: the head of each call, then its arguments in fragments."""
        q = self.quirks
        if c.function_call:
            yield {"function_call": {"name": c.function_call["name"], "arguments": ""}}
            for fragment in _fragments(c.function_call["arguments"]):
                yield {"function_call": {"arguments": fragment}}
            return
        for i, call in enumerate(c.tool_calls):
            yield {"tool_calls": [self.tool_call(call, i, with_arguments=False)]}
            fragments = _fragments(call["arguments"]) if isinstance(call["arguments"], str) else [call["arguments"]]
            for n, fragment in enumerate(fragments):
                entry = {} if "stream-tool-call-no-index" in q else {"index": i}
                function = {"arguments": fragment}
                if "stream-tool-call-name-late" in q and n == len(fragments) - 1:
                    function = {"name": call["name"], **function}
                if "stream-tool-call-head-repeated" in q:  # LiteLLM, Fireworks: the head in every delta
                    entry = {**entry, "id": call["id"], "type": "function"}
                    function = {"name": call["name"], **function}
                yield {"tool_calls": [{**entry, "function": function}]}
            if "stream-tool-arguments-duplicated" in q and isinstance(call["arguments"], str):
                # vLLM's end-of-stream flush: the whole arguments once more, after the fragments
                entry = {} if "stream-tool-call-no-index" in q else {"index": i}
                yield {"tool_calls": [{**entry, "function": {"arguments": call["arguments"]}}]}

    def body(self, endpoint: str, model: str, choices: list[Choice], usage: dict) -> dict:
        q = self.quirks
        base = self._base(endpoint, model)
        if endpoint == "chat":
            def message(c: Choice) -> dict:
                m = {"role": "assistant", "content": None if c.calls else c.text}
                if "optional-fields-absent" not in q:
                    m["refusal"] = None
                if c.tool_calls:
                    m["tool_calls"] = [self.tool_call(call) for call in c.tool_calls]
                if c.function_call:
                    m["function_call"] = dict(c.function_call)
                return m
            return {**base, "object": "chat.completion", "choices": [
                {"index": c.index, "message": message(c), **self._choice_extras(endpoint, c),
                 "finish_reason": c.finish_reason} for c in choices], "usage": usage}
        text_key = "message" if "completions-text-as-message" in q else "text"
        return {**base, "object": "text_completion", "choices": [
            {text_key: c.text, "index": c.index, **self._choice_extras(endpoint, c), "finish_reason": c.finish_reason}
            for c in choices], "usage": usage}

    def stream(self, endpoint: str, model: str, choices: list[Choice], usage: dict,
               include_usage: bool) -> Iterator[str]:
        """The `data:` payloads of a streamed response, ending with [DONE]."""
        q = self.quirks
        base = self._base(endpoint, model)
        object_name = {"chat": "chat.completion.chunk", "completions": "text_completion"}[endpoint]
        if "stream-wrong-object" in q:
            object_name = {"chat": "chat.completion", "completions": "text_completion.chunk"}[endpoint]
        usage_field = {"usage": None} if include_usage else {}
        text_key = "message" if "completions-text-as-message" in q else "text"

        sent = iter(range(1, 1 << 30))

        def chunk(choice: dict) -> str:
            if "stream-finish-reason-absent" in q and choice.get("finish_reason") is None:
                choice = {k: v for k, v in choice.items() if k != "finish_reason"}
            ident = {"id": completion_id(endpoint)} if "stream-id-per-chunk" in q else {}
            if "stream-created-per-chunk" in q:  # as if every chunk left a second after the one before
                ident["created"] = base["created"] + next(sent)
            return json.dumps({**base, **ident, "object": object_name, "choices": [choice], **usage_field})

        def piece(c: Choice, text: str | None, finish: str | None, first: bool = False, entries=(),
                  offset: int = 0) -> str:
            extras = self._choice_extras(endpoint, c if entries else None, list(entries), offset)
            if endpoint == "chat":
                delta: dict = {}
                if first:
                    content = None if c.calls else ""
                    delta = {"content": content} if "stream-no-role" in q else {"role": "assistant", "content": content}
                    if "optional-fields-absent" not in q:
                        delta["refusal"] = None
                elif text is not None:
                    delta = {"content": text}
                    if "stream-role-every-delta" in q:
                        delta["role"] = "assistant"
                return chunk({"index": c.index, "delta": delta, **extras, "finish_reason": finish})
            return chunk({text_key: text or "", "index": c.index, **extras, "finish_reason": finish})

        if endpoint == "chat":
            for c in choices:
                yield piece(c, None, None, first=True)
            for c in choices:
                for delta in self.tool_call_deltas(c):
                    yield chunk({"index": c.index, "delta": delta, **self._choice_extras(endpoint),
                                 "finish_reason": None})
        offsets = {}
        for c in choices:
            if c.prefix:  # echo: the prompt comes first
                prefix_entries = c.token_entries()[:len(c.prefix)]
                yield piece(c, "".join(c.prefix), None, entries=prefix_entries if c.logprobs_k is not None else ())
            offsets[c.index] = len("".join(c.prefix))
        steps = {c.index: list(zip(c.pieces, c.token_ids, c.steps or [None] * len(c.pieces))) for c in choices}
        if "stream-drops-first-token" in q:
            steps = {i: s[1:] for i, s in steps.items()}
        longest = max((len(s) for s in steps.values()), default=0)
        for step in range(longest):
            for c in choices:
                if step < len(steps[c.index]):
                    entry = steps[c.index][step]
                    yield piece(c, entry[0], None, entries=[entry] if c.logprobs_k is not None else (),
                                offset=offsets[c.index])
                    offsets[c.index] += len(entry[0])
            if step == 0 and "stream-malformed-event" in q:
                yield '{"id": "broken", "choices": [{"index": 0, "delta": {"content": "x"'
        for c in choices:
            final = piece(c, None, c.finish_reason)
            if "stream-usage-unasked" in q and not include_usage and c is choices[-1]:
                final = json.dumps({**json.loads(final), "usage": usage})  # llama-server's last chunk
            yield final
            if "stream-finish-reason-repeated" in q:
                yield piece(c, None, c.finish_reason)
        if include_usage or "stream-usage-always" in q:
            choices_field = None if "stream-usage-choices-null" in q else []
            yield json.dumps({**base, "object": object_name, "choices": choices_field, "usage": usage})
        if "stream-no-done" not in q:
            yield "[DONE]"


def _mean_logprob(choice: Choice) -> float:
    values = [dist[tid] for tid, dist in zip(choice.token_ids, choice.steps)]
    return sum(values) / len(values) if values else 0.0


def _fragments(text: str, size: int = 8) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def completion_id(endpoint: str) -> str:
    return ("chatcmpl-" if endpoint == "chat" else "cmpl-") + uuid.uuid4().hex[:24]


def shape_error(err: "ApiError", quirks: frozenset[str]) -> tuple[int, dict | bytes]:
    """The status and body of an error, in OpenAI's envelope unless a quirk says otherwise."""
    if err.raw:
        return err.status, err.body["error"]["message"].encode()
    status, error = err.status, dict(err.body["error"])
    if "errors-422" in quirks and status == 400:
        status = 422
    if "errors-no-param" in quirks:
        error["param"] = None
    if "errors-flat" in quirks:
        return status, {"object": "error", "message": error["message"], "type": error["type"],
                        "param": error["param"], "code": status}
    if "errors-detail" in quirks:
        return status, {"detail": error["message"]}
    return status, {"error": error}


def models_list(names: list[str], created: int, quirks: frozenset[str]) -> dict:
    if "models-list-empty" in quirks:
        names = []
    return {"object": "list", "data": [model_object(name, created, quirks) for name in names]}


def model_object(name: str, created: int, quirks: frozenset[str]) -> dict:
    if "models-created-now" in quirks:  # the time of the call, not of the model
        created = int(time.time())
    body: dict = {"id": name, "object": "model", "created": created, "owned_by": "conformance-reference"}
    if "models-owner" in quirks:
        body["owner"] = body.pop("owned_by")
    if "models-no-created" in quirks:
        del body["created"]
    return body
