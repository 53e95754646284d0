"""The parameter catalogue states facts of OpenAI's OpenAPI document: check them against it."""

import pytest

from conformance.config.catalogue import load_catalogue

REQUESTS = {"chat": "CreateChatCompletionRequest", "completions": "CreateCompletionRequest"}


@pytest.fixture(scope="module")
def schemas(openapi):
    return openapi["components"]["schemas"]


def _resolve(schemas, node):
    while isinstance(node, dict) and "$ref" in node:
        node = schemas[node["$ref"].rsplit("/", 1)[1]]
    return node


def properties(schemas, name):
    """All properties of a request schema, following $ref and allOf."""
    out = {}
    node = _resolve(schemas, {"$ref": f"#/components/schemas/{name}"})
    stack = [node]
    while stack:
        node = _resolve(schemas, stack.pop())
        stack.extend(node.get("allOf", []))
        for key, value in node.get("properties", {}).items():
            out.setdefault(key, _resolve(schemas, value))
    return out


def test_openai_parameters_exist_with_the_catalogued_ranges(schemas):
    catalogue = load_catalogue()
    for endpoint, request in REQUESTS.items():
        props = properties(schemas, request)
        for p in catalogue.for_endpoint(endpoint):
            if p.is_extension:
                assert p.name not in props, f"{p.name} is an OpenAI parameter after all"
                continue
            assert p.name in props, f"{endpoint}.{p.name} is not in {request}"
            spec = props[p.name]
            options = [o for o in spec.get("anyOf", [spec]) if o.get("type") != "null"]
            spec = options[0]
            # max_tokens and max_completion_tokens: OpenAI documents no minimum for chat (the catalogue
            # claims only that negative values are invalid); completions' 0 is checked.  seed: any int64.
            chat_limit = endpoint == "chat" and p.name in ("max_tokens", "max_completion_tokens")
            if p.type in ("number", "integer") and not chat_limit and p.name != "seed":
                assert spec.get("minimum") == p.minimum, (endpoint, p.name, spec)
                assert spec.get("maximum") == p.maximum, (endpoint, p.name, spec)
            if p.type == "stop":
                arrays = [o for o in spec["oneOf"] if o.get("type") == "array"]
                assert arrays[0]["maxItems"] == p.max_items


def test_required_parameters_match(schemas):
    catalogue = load_catalogue()
    chat = _resolve(schemas, {"$ref": "#/components/schemas/CreateChatCompletionRequest"})
    required_chat = set(sum((part.get("required", []) for part in chat["allOf"]), []))
    assert {p.name for p in catalogue.for_endpoint("chat") if p.required} == required_chat
    completion = schemas["CreateCompletionRequest"]
    assert {p.name for p in catalogue.for_endpoint("completions") if p.required} == set(completion["required"])


def test_logit_bias_range_is_documented(schemas):
    props = properties(schemas, "CreateChatCompletionRequest")
    assert "-100 to 100" in props["logit_bias"]["description"]
