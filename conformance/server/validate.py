"""Request validation of the reference server: a request body in, an ApiError out when OpenAI
would refuse it.

The ranges and types come from the parameter catalogue, whose facts are read from OpenAI's
OpenAPI document.  `Validator.validate` checks everything but the model's existence, which
`Validator.check_model` checks last (the server composes the two, see server/http.py).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from ..config.catalogue import Parameter, load_catalogue
from .behaviour import REFERENCE, Behaviour
from .structured import NAME_PATTERN, SchemaError, check_schema, tool_function

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


def invalid_type(name: str, expected: str, value: Any) -> ApiError:
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
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                            "but got an empty array instead.", param="messages", code="empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages[{i}]", "an object", message)
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
            raise invalid_type(f"messages[{i}].content", "a string or an array of content parts", content)


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _validate_tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise invalid_type(where, "an array", calls)
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(call.get("id") if isinstance(call, dict) else None, str) and isinstance(function, dict)
                and isinstance(function.get("name"), str) and isinstance(function.get("arguments"), str)):
            raise ApiError(400, f"Invalid '{where}[{j}]': expected {{id, type: 'function', function: {{name, "
                                "arguments}}}.", param=f"{where}[{j}]", code="invalid_value")


def validate_function(function: Any, where: str) -> None:
    """A function definition of `tools[i].function` or of the deprecated `functions[i]`."""
    if not isinstance(function, dict):
        raise invalid_type(where, "an object", function)
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
        raise invalid_type(name, "an array", tools)
    for i, tool in enumerate(tools):
        if name == "functions":
            validate_function(tool, f"functions[{i}]")
            continue
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ApiError(400, f"Invalid value for 'tools[{i}].type': expected 'function'.",
                           param=f"tools[{i}].type", code="invalid_value")
        validate_function(tool.get("function"), f"tools[{i}].function")


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
        raise invalid_type(name, "a string or a named function", value)


def _validate_response_format(value: Any) -> None:
    if not isinstance(value, dict):
        raise invalid_type("response_format", "an object", value)
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
        raise invalid_type("prompt", "a string, an array of strings or an array of token arrays", prompt)


def validate_value(p: Parameter, value: Any, check_ranges: bool = True,
                   types: Mapping[str, Callable[[Any, Parameter], None]] = MappingProxyType({})) -> None:
    """Refuse `value` of `p` as OpenAI does; `types`: validators of the catalogue's other types, by type
    (the Responses API's own shapes, responses_api.VALUE_TYPES)."""
    name = p.name
    if p.type == "string":
        if not isinstance(value, str):
            raise invalid_type(name, "a string", value)
    elif p.type == "boolean":
        if not isinstance(value, bool):
            raise invalid_type(name, "a boolean", value)
    elif p.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(name, "an integer", value)
        if check_ranges:
            _check_range(p, value, name)
    elif p.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid_type(name, "a number", value)
        if check_ranges:
            _check_range(p, value, name)
    elif p.type == "messages":
        _validate_messages(value)
    elif p.type == "prompt":
        _validate_prompt(value)
    elif p.type == "stop":
        if isinstance(value, list):
            if not all(isinstance(s, str) for s in value):
                raise invalid_type(name, "a string or an array of strings", value)
            if check_ranges and p.max_items is not None and len(value) > p.max_items:
                raise ApiError(400, f"Invalid 'stop': array too long. Expected an array with maximum length "
                                    f"{p.max_items}, but got an array with length {len(value)} instead.",
                               param="stop", code="array_above_max_length")
        elif not isinstance(value, str):
            raise invalid_type(name, "a string or an array of strings", value)
    elif p.type == "logit_bias":
        if not isinstance(value, dict):
            raise invalid_type(name, "an object", value)
        for key, bias in value.items():
            if not key.lstrip("-").isdigit():
                raise ApiError(400, f"Invalid key in 'logit_bias': {key}. Keys must be token ids (integers).",
                               param="logit_bias", code="invalid_value")
            if isinstance(bias, bool) or not isinstance(bias, (int, float)):
                raise invalid_type(f"logit_bias.{key}", "a number", bias)
            if check_ranges and not (p.minimum <= bias <= p.maximum):
                raise ApiError(400, f"Invalid 'logit_bias': value {bias} for token {key} is out of range. "
                                    f"Expected a value between {p.minimum:g} and {p.maximum:g}.",
                               param="logit_bias", code="invalid_value")
    elif p.type == "enum":
        if not isinstance(value, str):
            raise invalid_type(name, "a string", value)
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
            raise invalid_type(name, "an object", value)
    elif p.type == "array":
        if not isinstance(value, list):
            raise invalid_type(name, "an array", value)
    elif p.type == "string_map":
        if not isinstance(value, dict):
            raise invalid_type(name, "an object", value)
        for key, item in value.items():
            if not isinstance(item, str):
                raise invalid_type(f"{name}.{key}", "a string", item)
    elif p.type == "stream_options":
        if not isinstance(value, dict):
            raise invalid_type(name, "an object", value)
        unknown = sorted(set(value) - {"include_usage", "include_obfuscation"})
        if unknown:
            raise ApiError(400, f"Unrecognized request argument supplied: stream_options.{unknown[0]}",
                           param="stream_options")
        if "include_usage" in value and not isinstance(value["include_usage"], bool):
            raise invalid_type("stream_options.include_usage", "a boolean", value["include_usage"])
    elif p.type in types:
        types[p.type](value, p)
    else:  # pragma: no cover - the catalogue names only the types above
        raise AssertionError(f"unknown parameter type {p.type}")


def unknown_model_error(model: Any) -> ApiError:
    return ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                    code="model_not_found")


class Validator:
    """Checks request bodies against the catalogue and OpenAI's rules for a text-only model."""

    def __init__(self, models: Iterable[str], behaviour: Behaviour = REFERENCE,
                 types: Mapping[str, Callable[[Any, Parameter], None]] = MappingProxyType({}),
                 rules: Mapping[str, Callable[[dict], None]] = MappingProxyType({})):
        """`types`: validators of the catalogue's other value types; `rules`: per endpoint, what is
        refused of a whole request beyond its values (the Responses API's, responses_api.request_rules)."""
        self.models = tuple(models)
        self.types = types
        self.rules = rules
        self.behaviour = behaviour
        self.catalogue = load_catalogue()

    def validate(self, endpoint: str, body: Any) -> dict:
        """Everything but the model's existence; returns the body the generator will act on."""
        b = self.behaviour
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        params = {p.name: p for p in self.catalogue.for_endpoint(endpoint)}
        for key in body:
            if key not in params and b.unknown_parameters_refused:
                raise ApiError(400, f"Unrecognized request argument supplied: {key}")
        for p in params.values():
            if p.required and body.get(p.name) is None:
                raise ApiError(400, f"Missing required parameter: '{p.name}'.", param=p.name,
                               code="missing_required_parameter")
        for name, value in body.items():
            if value is not None and name in params:
                validate_value(params[name], value, check_ranges=b.ranges_checked, types=self.types)
        self._model_rules(endpoint, body)
        if endpoint in self.rules:
            self.rules[endpoint](body)
        if (endpoint == "chat" and (body.get("response_format") or {}).get("type") == "json_object"
                and b.json_word_required
                and not any("json" in message_text(m).lower() for m in body["messages"])):
            raise ApiError(400, "'messages' must contain the word 'json' in some form, to use 'response_format' of "
                                "type 'json_object'.", param="messages")
        if body.get("stream_options") is not None and not body.get("stream"):
            raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           param="stream_options", code="invalid_value")
        return dict(body)

    def check_model(self, body: dict) -> None:
        if body["model"] not in self.models:
            raise unknown_model_error(body["model"])

    def _model_rules(self, endpoint: str, body: dict) -> None:
        """What OpenAI refuses for this kind of model, and combinations it refuses."""
        b = self.behaviour
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
            _tool_rules(body)
        if (b.greedy_n_max is not None and (body.get("n") or 1) > b.greedy_n_max
                and body.get("temperature") == 0):
            raise ApiError(400, f"n > {b.greedy_n_max} is not supported with greedy sampling (temperature 0).",
                           param="n", code="invalid_value")
        best_of = body.get("best_of")
        if endpoint == "completions" and best_of is not None and b.best_of_checked:
            if best_of < (body.get("n") or 1):
                raise ApiError(400, "best_of must be greater than or equal to n.", param="best_of",
                               code="invalid_value")
            if best_of > 1 and body.get("stream"):
                raise ApiError(400, "Cannot stream results with best_of greater than 1.", param="best_of",
                               code="invalid_value")


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
