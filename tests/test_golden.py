"""Golden positives: every example response in OpenAI's OpenAPI document passes our validators.

The fixtures are derived here from the document (never copied into the project): the example
responses of /chat/completions, /completions, /models and /models/{model}, the examples of the
response, chunk and model schemas, and every error object among the document's examples.
"""

import json
import re

import pytest

from conformance.wire.reply import aggregate_chunks, read_stream
from conformance.harness.schema import validate, validate_error_envelope
from conformance.wire.transport import Exchange

OPERATIONS = {("/chat/completions", "post"): "chat", ("/completions", "post"): "completions",
              ("/models", "get"): "models.list", ("/models/{model}", "get"): "model"}
SCHEMAS = {"CreateChatCompletionResponse": "chat", "CreateChatCompletionStreamResponse": "chat",
           "CreateCompletionResponse": "completions", "Model": "model"}


def loads_lenient(text: str):
    """JSON, repairing the two kinds of typo the document's examples contain (a missing comma
    between two members, a trailing comma before a closing bracket)."""
    try:
        return json.loads(text)
    except ValueError:
        repaired = re.sub(r",(\s*[}\]])", r"\1", text)
        repaired = re.sub(r'("|\d|true|false|null)(\s*\n\s*")', r"\1,\2", repaired)
        return json.loads(repaired)


def events(text: str) -> list:
    """An example response: one JSON document, or a stream of them separated by blank lines."""
    parts = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip() not in ("...", "....")]
    return [loads_lenient(p) for p in parts]


def golden(openapi):
    cases = []
    for (path, method), kind in OPERATIONS.items():
        examples = openapi["paths"][path][method]["x-oaiMeta"]["examples"]
        for example in examples if isinstance(examples, list) else [examples]:
            cases.append((f"{method.upper()} {path}: {example.get('title', 'example')}", kind, example["response"]))
    for name, kind in SCHEMAS.items():
        cases.append((f"schema {name}", kind, openapi["components"]["schemas"][name]["x-oaiMeta"]["example"]))
    return cases


def error_objects(openapi):
    """Every error object among the document's examples: {"error": {"type", "message", ...}}."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("example", "response") and isinstance(value, str) and '"error"' in value:
                    try:
                        parsed = loads_lenient(value)
                    except ValueError:
                        continue
                    inner = parsed.get("error") if isinstance(parsed, dict) else None
                    if isinstance(inner, dict) and {"type", "message"} <= set(inner):
                        found.append((where, inner))
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(openapi, "")
    return found


def test_there_are_golden_examples(openapi):
    kinds = {kind for _, kind, _ in golden(openapi)}
    assert kinds == {"chat", "completions", "models.list", "model"}
    assert len(golden(openapi)) >= 12


def test_every_example_response_passes_the_validators(openapi):
    problems = []
    for name, kind, text in golden(openapi):
        docs = events(text)
        if kind == "models.list":
            (doc,) = docs
            assert doc["object"] == "list"
            problems += [f"{name}: {p}" for entry in doc["data"] for p in validate("model", entry)]
        elif kind == "model":
            problems += [f"{name}: {p}" for doc in docs for p in validate("model", doc)]
        else:
            for doc in docs:
                streamed = doc["object"] in ("chat.completion.chunk",) or len(docs) > 1 or "Streaming" in name
                validator = {("chat", False): "chat.completion", ("chat", True): "chat.completion.chunk",
                             ("completions", False): "text_completion",
                             ("completions", True): "text_completion.chunk"}[(kind, streamed)]
                problems += [f"{name}: {p}" for p in validate(validator, doc)]
    assert problems == []


def test_streamed_examples_pass_the_strict_stream_reading(openapi):
    streams = [(name, kind, events(text)) for name, kind, text in golden(openapi)
               if kind == "chat" and len(events(text)) > 1]
    assert streams
    for name, kind, chunks in streams:
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        exchange = Exchange("POST", "u", {}, "", 200, {"content-type": "text/event-stream"})
        exchange.record_read(body.encode())
        view = read_stream(exchange)
        assert view.problems == [] and view.done, name
        assert len({c["id"] for c in view.chunks}) == 1
        (choice,) = aggregate_chunks(kind, view.chunks)
        assert choice.role == "assistant" and choice.roles_seen == 1 and choice.finish_reasons_seen == 1, name


def test_every_error_example_passes_the_envelope_validator(openapi):
    errors = error_objects(openapi)
    assert errors, "the document should hold error examples"
    problems = [f"{where}: {p}" for where, inner in errors for p in validate_error_envelope({"error": inner})]
    assert problems == []


@pytest.mark.parametrize("text, fixed", [
    ('{"a": 1\n  "b": 2}', {"a": 1, "b": 2}),
    ('{"a": [1, 2,]\n}', {"a": [1, 2]}),
])
def test_the_lenient_loader_repairs_only_those_typos(text, fixed):
    assert loads_lenient(text) == fixed
    with pytest.raises(ValueError):
        loads_lenient('{"a": }')
