"""Strict response validation against the openai SDK's typed models.

The SDK parses leniently (it builds objects without validating); here the same models, which
are generated from OpenAI's OpenAPI document, validate strictly: required fields present,
literal values (`object`, `finish_reason`, `role`) exact, integers not floats or strings.
"""

from __future__ import annotations

from typing import Any

import pydantic
from openai.types import Completion, CompletionUsage, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

KINDS = {
    "chat.completion": ChatCompletion,
    "chat.completion.chunk": ChatCompletionChunk,
    "text_completion": Completion,
    "text_completion.chunk": Completion,
    "model": Model,
    "usage": CompletionUsage,
}


def _format(error: pydantic.ValidationError) -> list[str]:
    out = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        value = item.get("input")
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:80] + "..."
        out.append(f"{where}: {item['msg']} (got {shown})")
    return out


def validate(kind: str, data: Any) -> list[str]:
    """Return the problems of `data` as the given kind ([] when it conforms)."""
    if not isinstance(data, dict):
        return [f"expected a JSON object, got {type(data).__name__}"]
    if kind == "text_completion.chunk":
        # OpenAI's streamed completion chunks carry finish_reason null until the last one, while
        # the SDK's single Completion type (shared by both modes) declares it non-null.
        data = {**data, "choices": [
            {**c, "finish_reason": c.get("finish_reason") or "stop"} if isinstance(c, dict) else c
            for c in data.get("choices", [])
        ]} if isinstance(data.get("choices"), list) else data
    try:
        KINDS[kind].model_validate(data, strict=True)
    except pydantic.ValidationError as exc:
        return _format(exc)
    return []


def validate_error_envelope(body: Any) -> list[str]:
    """OpenAI's ErrorResponse: {"error": {"message": str, "type": str, "param": str|null, "code": str|null}}."""
    if not isinstance(body, dict):
        return [f"the body is not a JSON object ({type(body).__name__})"]
    error = body.get("error")
    if not isinstance(error, dict):
        return [f"no 'error' object at the top level (keys: {sorted(body)})"]
    problems = []
    for field, types in (("message", (str,)), ("type", (str,)), ("param", (str, type(None))),
                         ("code", (str, type(None)))):
        if field not in error:
            problems.append(f"error.{field} is missing")
        elif not isinstance(error[field], types):
            problems.append(f"error.{field} is {type(error[field]).__name__}")
    return problems
