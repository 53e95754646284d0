"""Constrained generation: JSON that follows a schema, and tool calls, from the toy model's tokens.

The toy model chooses and the schema decides what may be chosen, as grammar-constrained decoding
does in vLLM, llama.cpp and OpenAI's strict mode: the output is valid by construction and still
depends on the prompt, the sampling parameters and the seed (greedy output is repeatable).
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, Iterator

from .model import VOCAB, Sampling, ToyModel

# Keywords that only annotate a schema; anything else the generator does not know is refused.
ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment"}
KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
            "minItems", "maxItems", "minimum", "maximum", "$ref", "$defs", "definitions", *ANNOTATIONS}
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class SchemaError(ValueError):
    """A schema the generator cannot follow (or that strict mode forbids); `where` locates it."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(message)
        self.where = where


class Chooser:
    """Draws the model's words and choices, in order, from one generation per request."""

    def __init__(self, model: ToyModel, prompt_ids: list[int], sampling: Sampling, rng: random.Random):
        self._tokens = self._stream(model, list(prompt_ids), sampling, rng)

    @staticmethod
    def _stream(model: ToyModel, ids: list[int], sampling: Sampling, rng: random.Random) -> Iterator[int]:
        while True:
            generated = model.generate(ids, 64, sampling, rng).token_ids
            if not generated:  # the model ended at once: nudge the context and go on
                ids = ids + [1]
                continue
            yield from generated
            ids = ids + generated

    def word(self) -> str:
        for _ in range(256):
            piece = VOCAB[next(self._tokens)].strip()
            if piece.isalpha():
                return piece
        return "word"

    def words(self, count: int) -> str:
        return " ".join(self.word() for _ in range(count))

    def pick(self, options: int) -> int:
        return next(self._tokens) % options


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            target = root.get(prefix[2:-1], {}).get(ref[len(prefix):])
            if isinstance(target, dict):
                return target
    raise SchemaError(f"unresolvable $ref {ref!r}")


def check_schema(schema: Any, strict: bool, where: str = "schema", root: dict | None = None) -> None:
    """Refuse what the generator cannot follow and, in strict mode, what OpenAI's strict mode forbids."""
    if not isinstance(schema, dict):
        raise SchemaError(f"{where} must be an object", where)
    root = schema if root is None else root
    unknown = sorted(set(schema) - KEYWORDS)
    if unknown:
        raise SchemaError(f"{where}: the keyword {unknown[0]!r} is not supported", where)
    for name, sub in (schema.get("$defs") or schema.get("definitions") or {}).items():
        check_schema(sub, strict, f"{where}.$defs.{name}", root)
    if "$ref" in schema:
        _resolve(schema, root)
        return
    types = schema.get("type")
    types = types if isinstance(types, list) else [types] if types else []
    if "object" in types:
        properties = schema.get("properties") or {}
        if strict and schema.get("additionalProperties") is not False:
            raise SchemaError(f"In {where}, 'additionalProperties' is required to be supplied and to be false.",
                              where)
        if strict and sorted(schema.get("required") or []) != sorted(properties):
            missing = sorted(set(properties) - set(schema.get("required") or []))
            raise SchemaError(f"In {where}, 'required' is required to be supplied and to be an array including "
                              f"every key in properties. Missing {missing}.", where)
        for name, sub in properties.items():
            check_schema(sub, strict, f"{where}.properties.{name}", root)
    if "items" in schema:
        check_schema(schema["items"], strict, f"{where}.items", root)
    for i, sub in enumerate(schema.get("anyOf") or []):
        check_schema(sub, strict, f"{where}.anyOf[{i}]", root)


def generate_value(schema: dict, chooser: Chooser, root: dict | None = None, depth: int = 0) -> Any:
    """A value valid against `schema` (checked with check_schema), filled with the model's choices."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][chooser.pick(len(schema["enum"]))]
    if "anyOf" in schema:
        options = schema["anyOf"]
        return generate_value(options[chooser.pick(len(options))], chooser, root, depth + 1)
    types = schema.get("type")
    if isinstance(types, list):
        concrete = [t for t in types if t != "null"] or ["null"]
        types = concrete[chooser.pick(len(concrete))]
    if types == "object" or (types is None and "properties" in schema):
        properties = schema.get("properties") or {}
        if not properties and schema.get("additionalProperties") is not False:
            return {"answer": chooser.words(3)}  # a free-form object, e.g. json_object mode
        return {name: generate_value(sub, chooser, root, depth + 1) for name, sub in properties.items()}
    if types == "array":
        low = int(schema.get("minItems", 1))
        high = max(low, int(schema.get("maxItems", low + 2)))
        count = low + chooser.pick(high - low + 1) if depth < 6 else low
        return [generate_value(schema.get("items") or {"type": "string"}, chooser, root, depth + 1)
                for _ in range(count)]
    if types in ("integer", "number"):
        low = schema.get("minimum", 0)
        high = schema.get("maximum", low + 99)
        value = low + chooser.pick(int(high - low) + 1)
        if types == "number" and value < high:
            value += chooser.pick(10) / 10
        return value
    if types == "boolean":
        return chooser.pick(2) == 1
    if types == "null":
        return None
    return chooser.words(1 + chooser.pick(3))


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def tool_function(tool: dict) -> dict:
    """The function definition of a `tools` entry, or of a deprecated `functions` entry."""
    return tool["function"] if "function" in tool else tool


def parameters_schema(function: dict) -> dict:
    return function.get("parameters") or {"type": "object", "properties": {}, "additionalProperties": False}


def topic_words(function: dict) -> set[str]:
    """Words of a function's name and description, for the reference's `auto` decision."""
    text = f"{function.get('name', '')} {function.get('description', '')}".replace("_", " ").lower()
    return {w for w in re.findall(r"[a-z]+", text) if len(w) >= 4}


def relevant(functions: list[dict], user_text: str) -> list[dict]:
    """The functions whose topic the user's last message mentions (a stand-in for a model's judgement)."""
    words = set(re.findall(r"[a-z]+", user_text.lower()))
    return [f for f in functions if topic_words(f) & words]
