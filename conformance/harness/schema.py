"""Strict response validation against the openai SDK's typed models.

The SDK parses leniently (it builds objects without validating); here the same models, which
are generated from OpenAI's OpenAPI document, validate strictly: required fields present,
literal values (`object`, `finish_reason`, `role`) exact, integers not floats or strings.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pydantic

from .checks import describe


@functools.cache
def kinds() -> dict[str, type[pydantic.BaseModel]]:
    """The SDK's model of each kind of object; imported at the first validation, not at collection
    (see wire/client.py on why the openai SDK is imported late)."""
    from openai.types import Completion, CompletionUsage, Model
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from openai.types.responses import Response, ResponseStreamEvent

    return {"chat.completion": ChatCompletion, "chat.completion.chunk": ChatCompletionChunk,
            "text_completion": Completion, "text_completion.chunk": Completion, "model": Model,
            "usage": CompletionUsage, "response": Response,
            "response.event": pydantic.TypeAdapter(ResponseStreamEvent)}


# Fields of a Response that OpenAI's document requires (components.schemas.Response `required`) and
# the SDK's model leaves optional: present, null or not.
RESPONSE_REQUIRED = ("error", "incomplete_details", "instructions", "metadata", "temperature", "top_p")


def _format(error: pydantic.ValidationError) -> list[str]:
    """Each problem as where, what came back there (typed) and why it breaks the model."""
    out = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        if item["type"] == "missing":
            out.append(f"{where} is absent, and it is required")
        else:
            out.append(f"{where} is {describe(item.get('input'))}: {item['msg']}")
    return out


def validate(kind: str, data: Any) -> list[str]:
    """Return the problems of `data` as the given kind ([] when it conforms)."""
    if not isinstance(data, dict):
        return [f"the response is {describe(data)}, not a JSON object"]
    if kind == "text_completion.chunk":
        # OpenAI's streamed completion chunks carry finish_reason null until the last one, while
        # the SDK's single Completion type (shared by both modes) declares it non-null.
        data = {**data, "choices": [
            {**c, "finish_reason": c.get("finish_reason") or "stop"} if isinstance(c, dict) else c
            for c in data.get("choices", [])
        ]} if isinstance(data.get("choices"), list) else data
    model = kinds()[kind]
    try:
        if isinstance(model, pydantic.TypeAdapter):
            model.validate_python(data, strict=True)
        else:
            model.model_validate(data, strict=True)
    except pydantic.ValidationError as exc:
        return _format(exc)
    if kind == "response":
        return [f"{field} is absent, and it is required" for field in RESPONSE_REQUIRED if field not in data]
    return []


_INDEX = re.compile(r"\.\d+(?=\.|$)")
_PROBLEM = re.compile(r"^(?P<where>\S+) is (?:(?P<absent>absent, and it is required)|(?P<kind>\S+).*?: (?P<why>[^:]*))$")


def schema_finding(problems: list[str]) -> str | None:
    """The first problem of `validate` as a finding (conformance.harness.checks.Deviation): the
    field without its indices and what is wrong, without the value ("`choices[].text` is absent").
    The same field wrong the same way reads the same in a response, a chunk and an example."""
    if not problems:
        return None
    match = _PROBLEM.match(problems[0])
    if match is None:
        return problems[0].split(" (", 1)[0]
    where = f"`{_INDEX.sub('[]', match['where'])}`"
    if match["absent"]:
        return f"{where} is absent, and it is required"
    if match["why"].startswith("Input should be '"):  # an enum or a literal: which list depends on the kind
        return f"{where} outside OpenAI's values"
    return f"{where} is a {match['kind']}: {match['why']}"


# A value as `describe` writes it ("a string 'x'", "object {...}"), up to what follows it.
_VALUE = re.compile(r" (?:an? )?(?P<kind>string|number|object|array)(?: with keys| of \d+)? .*?(?=, not |$)")


def envelope_finding(problems: list[str]) -> str | None:
    """The first problem of `validate_error_envelope` as a finding, without the body quoted."""
    if not problems:
        return None
    problem = re.sub(r" \(.*$", "", problems[0])  # the body quoted
    problem = _VALUE.sub(lambda m: f" {'an' if m['kind'][0] in 'aeiou' else 'a'} {m['kind']}", problem, count=1)
    return "errors not in OpenAI's envelope: " + problem.replace(": ", " ", 1).replace("JSON a string", "JSON")


def validate_error_envelope(body: Any, raw: bytes | None = None) -> list[str]:
    """OpenAI's ErrorResponse: {"error": {"message": str, "type": str, "param": str|null, "code": str|null}}.

    Each problem says what came back, typed, and why it is not the envelope; `raw` (the body's
    bytes) is quoted when the body is not JSON."""
    if body is None and raw is not None:
        text = raw.decode("utf-8", "replace")
        return [f"a body that is not JSON: {describe(text)}" if text.strip() else "an empty body"]
    if not isinstance(body, dict):
        return [f"a body that is {describe(body, article=True)}, not a JSON object"]
    if "error" not in body:
        return [f"no top-level 'error' in the body ({describe(body)})"]
    error = body["error"]
    if not isinstance(error, dict):
        return [f"the top-level 'error' is {describe(error, article=True)}, not an object"]
    problems = []
    for field, types, wanted in (("message", (str,), "a string"), ("type", (str,), "a string"),
                                 ("param", (str, type(None)), "a string or null"),
                                 ("code", (str, type(None)), "a string or null")):
        if field not in error:
            problems.append(f"error.{field} is absent")
        elif not isinstance(error[field], types):
            problems.append(f"error.{field} is {describe(error[field], article=True)}, not {wanted}")
    return problems
