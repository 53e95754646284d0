"""Which features an application's requests use, and which checks decide each of them.

A request names its features by what it asks for, not by which keys it holds: `n: 1` asks for
nothing `n` can break except acceptance, `n: 3` depends on three choices coming back. What each
feature means for the checks is data (conformance/config/data/migration.toml).
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Any

from ..config.catalogue import load_catalogue
from .traffic import Request, Traffic

import tomllib

# How a feature is judged: by its checks' outcomes; by the parameter's verdict alone (sent with
# its default value); or not at all (no check covers it).
BY_CHECKS, BY_VERDICT, NOT_COVERED = "checks", "verdict", "not covered"


@dataclasses.dataclass(frozen=True)
class Feature:
    key: str  # e.g. "chat.n", "chat.default:n", "completions.unknown:guided_json"
    endpoint: str  # chat, completions, models or auth
    title: str
    checks: tuple[str, ...]  # --check patterns
    parameter: str | None = None
    blocking: bool = True
    workaround: str = ""
    judged_by: str = BY_CHECKS


@dataclasses.dataclass
class Use:
    """One feature as the traffic uses it."""

    feature: Feature
    modes: set[str] = dataclasses.field(default_factory=set)
    where: list[str] = dataclasses.field(default_factory=list)  # the first few lines that use it
    count: int = 0

    def add(self, request: Request, mode: str | None) -> None:
        self.count += 1
        if mode:
            self.modes.add(mode)
        if len(self.where) < 5:
            self.where.append(request.where)


@dataclasses.dataclass(frozen=True)
class MigrationData:
    features: dict[str, dict]  # key template -> entry
    defaults: dict[str, Any]


@functools.cache
def load_migration_data() -> MigrationData:
    text = resources.files("conformance.config.data").joinpath("migration.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return MigrationData(features={f["key"]: f for f in data["feature"]}, defaults=dict(data["defaults"]))


def _check_ids_for(parameter: str, endpoint: str) -> tuple[str, ...]:
    from ..registry import resolved_checks

    ids = sorted({c.id for c in resolved_checks() if c.endpoint == endpoint and c.parameter == parameter})
    if not load_catalogue().get(parameter, endpoint).observable:
        ids.append(f"{endpoint}.parameters.accepted@{parameter}")
    return tuple(ids)


def feature(key: str, endpoint: str) -> Feature:
    """The feature named `key` on `endpoint` (a data entry, or one derived for a parameter)."""
    data = load_migration_data()
    template = key.replace(f"{endpoint}.", "{endpoint}.", 1) if key.startswith(f"{endpoint}.") else key
    entry = data.features.get(key) or data.features.get(template)
    if entry is not None:
        return Feature(key=key, endpoint=endpoint, title=entry["title"].replace("{endpoint}", endpoint),
                       checks=tuple(c.replace("{endpoint}", endpoint) for c in entry["checks"]),
                       parameter=entry.get("parameter"), blocking=entry.get("blocking", True),
                       workaround=entry.get("workaround", ""))
    kind, _, name = key.removeprefix(f"{endpoint}.").partition(":")
    if kind == "unknown":
        return Feature(key=key, endpoint=endpoint, title=f"{endpoint}: `{name}` (not in OpenAI's API reference)",
                       checks=(), parameter=name, judged_by=NOT_COVERED)
    checks = _check_ids_for(name, endpoint)
    if kind == "default":
        return Feature(key=key, endpoint=endpoint, title=f"{endpoint}: `{name}` sent with its default value",
                       checks=checks, parameter=name, judged_by=BY_VERDICT)
    return Feature(key=key, endpoint=endpoint, title=f"{endpoint}: `{name}`", checks=checks, parameter=name,
                   judged_by=BY_CHECKS if checks else NOT_COVERED)


def _in_catalogue(name: str, endpoint: str) -> bool:
    try:
        load_catalogue().get(name, endpoint)
    except KeyError:
        return False
    return True


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _is_default(name: str, value: Any) -> bool:
    if _is_empty(value):
        return True
    defaults = load_migration_data().defaults
    return name in defaults and value == defaults[name] and type(value) is type(defaults[name])


def _message_features(messages: Any) -> list[str]:
    keys = ["chat.messages"]
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "developer":
            keys.append("chat.messages.developer")
        elif role == "tool":
            keys.append("chat.tools.follow-up")
        elif role == "function":
            keys.append("chat.functions.follow-up")
        if isinstance(message.get("content"), list):
            keys.append("chat.messages.content-parts")
    return keys


def _prompt_features(prompt: Any) -> list[str]:
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return ["completions.prompt.tokens"]
    if isinstance(prompt, list) and prompt and all(isinstance(p, list) for p in prompt):
        return ["completions.prompt.tokens", "completions.prompt.list"]
    if isinstance(prompt, list) and len(prompt) > 1:
        return ["completions.prompt.list"]
    return ["completions.prompt"]


def _value_features(endpoint: str, name: str, value: Any) -> list[str] | None:
    """Features a parameter's value asks for, where the value matters; None: the generic rule."""
    e = endpoint
    if name == "stop":
        keys = [f"{e}.stop"]
        if isinstance(value, str):
            keys.append(f"{e}.stop.string")
        elif isinstance(value, list) and len(value) > 1:
            keys.append(f"{e}.stop.several")
        return keys
    if name == "stream_options":
        wants_usage = isinstance(value, dict) and value.get("include_usage") is True
        return [f"{e}.stream_options"] if wants_usage else [f"{e}.default:stream_options"]
    if name == "tool_choice":
        if isinstance(value, dict):
            return ["chat.tool_choice.named"]
        return [f"chat.tool_choice.{value}"] if value in ("none", "required") else ["chat.default:tool_choice"]
    if name == "function_call":
        if isinstance(value, dict):
            return ["chat.functions"]
        return ["chat.function_call.none"] if value == "none" else ["chat.default:function_call"]
    if name == "response_format" and isinstance(value, dict):
        kind = value.get("type")
        return [f"chat.response_format.{kind}"] if kind in ("json_object", "json_schema", "text") else None
    return None


def _combination_features(endpoint: str, body: dict) -> list[str]:
    """Features that two parameters' values ask for together."""
    keys = []
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1 and body.get("temperature") == 0:
        keys.append(f"{endpoint}.n.greedy")
    if endpoint == "completions" and body.get("echo") is True and body.get("max_tokens") == 0:
        keys.append("completions.echo.max-tokens-zero")
    return keys


def features_of(request: Request) -> list[str]:
    """The feature keys one request uses, in a stable order, without repeats."""
    endpoint, body = request.endpoint, request.body
    if endpoint.startswith("models"):
        return [endpoint]
    keys = [f"{endpoint}.stream" if request.stream else f"{endpoint}.regular"]
    keys += _message_features(body.get("messages")) if endpoint == "chat" else _prompt_features(body.get("prompt"))
    data = load_migration_data()
    for name, value in body.items():
        if name in ("model", "messages", "prompt", "stream"):
            continue
        if not _in_catalogue(name, endpoint):
            keys.append(f"{endpoint}.unknown:{name}")
            continue
        special = None if _is_empty(value) else _value_features(endpoint, name, value)
        if special is not None:
            keys += special
        elif _is_default(name, value):
            keys.append(f"{endpoint}.default:{name}")
        elif f"{{endpoint}}.{name}" in data.features or f"{endpoint}.{name}" in data.features:
            keys.append(f"{endpoint}.{name}")
        else:
            keys.append(f"{endpoint}.param:{name}")
    keys += _combination_features(endpoint, body)
    return list(dict.fromkeys(keys))


def parameters_sent(traffic: Traffic) -> dict[str, set[str]]:
    """endpoint -> the catalogue parameters its requests send (for the error checks' variants)."""
    sent: dict[str, set[str]] = {}
    for request in traffic.requests:
        for name in request.body:
            if _in_catalogue(name, request.endpoint):
                sent.setdefault(request.endpoint, set()).add(name)
    return sent


def uses_of(traffic: Traffic) -> list[Use]:
    """Every feature the traffic uses, with where; error handling and authentication always."""
    uses: dict[str, Use] = {}

    def use(key: str, endpoint: str, request: Request, mode: str | None) -> None:
        if key not in uses:
            uses[key] = Use(feature(key, endpoint))
        uses[key].add(request, mode)

    sent = parameters_sent(traffic)
    for request in traffic.requests:
        mode = None if request.endpoint.startswith("models") else ("stream" if request.stream else "regular")
        endpoint = request.endpoint.split(".")[0]
        for key in features_of(request):
            use(key, endpoint, request, mode)
        if not request.endpoint.startswith("models"):
            use(f"{endpoint}.errors", endpoint, request, mode)
        use("auth", "auth", request, None)
    for key, u in uses.items():
        if key.endswith(".errors"):
            used = sorted(sent.get(u.feature.endpoint, ()))
            expanded = []
            for pattern in u.feature.checks:
                if pattern.endswith("@{used}"):
                    expanded += [pattern.replace("{used}", name) for name in used]
                else:
                    expanded.append(pattern)
            u.feature = dataclasses.replace(u.feature, checks=tuple(expanded))
    return list(uses.values())


def check_patterns(uses: list[Use]) -> list[str]:
    """The `--check` patterns that run every check the used features need."""
    return sorted({p for u in uses for p in u.feature.checks})
