"""Targets: one API deployment each, described by a TOML file (data, not code).

A target file names the base URL, the *name* of the environment variable that holds the key
(never a key), the models, limits, and what the provider declares it supports.  Command-line
overrides (`--base-url`, `--api-key-env`, `--model`) are applied on top.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import typing
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import tomllib

from ..vocabulary import MODES

ENDPOINTS = ("chat", "completions", "responses", "models")
# What a target is taken to offer when it does not say: not /responses, which many servers that say
# "OpenAI-compatible" lack (older vLLM, most gateways). Judged where declared, its checks are
# `unsupported` elsewhere, until a probe can tell "not offered" from broken (issue 29, point 5):
# hundreds of 404s judged as failures would say nothing true.
UNDECLARED_ENDPOINTS = ("chat", "completions", "models")
# A target's name is part of file names (reports/<stamp>-<name>-<hex>, expectations/<name>.toml).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_SLUG = 48  # a base URL's share of a target name


class TargetError(Exception):
    """A problem with the target configuration; its message is one line naming the fix."""


@dataclasses.dataclass(frozen=True)
class Limits:
    concurrency: int = 4
    requests_per_minute: int | None = None
    timeout_seconds: float = 60.0  # each read; a stalled stream is retried after this long
    stream_deadline_seconds: float = 300.0  # a stream still going after this long is a deviation
    recovery_seconds: float = 600.0  # after a timeout, how long a target may stay busy before the run goes on
    retry_attempts: int = 5  # attempts per request on transport failures and 408/429/502/503/504
    retry_base_seconds: float = 0.5  # first backoff, doubling; Retry-After wins when the target sends it
    retry_max_delay_seconds: float = 30.0  # total backoff per request
    context_tokens: int = 131072  # the models' context window, for the context-length check


# Every limit must be positive, except these, which may be 0 (no backoff).
LIMITS_MAY_BE_ZERO = frozenset({"retry_base_seconds", "retry_max_delay_seconds"})


@dataclasses.dataclass(frozen=True)
class Declared:
    endpoints: tuple[str, ...] = UNDECLARED_ENDPOINTS
    modes: tuple[str, ...] = MODES
    parameters: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()  # parameters the target says it does not offer


@dataclasses.dataclass(frozen=True)
class Docs:
    """What the target's own documentation says: the page, and a claim per parameter where it makes one."""
    url: str = ""
    claims: tuple[tuple[str, str], ...] = ()  # (parameter, the claim, quoted or summarised)

    def claim(self, parameter: str) -> str:
        return dict(self.claims).get(parameter, "")


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    models: tuple[str, ...]
    base_url: str | None = None
    api_key_env: str | None = None
    embedded: bool = False
    description: str = ""
    source: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    limits: Limits = Limits()
    limits_given: tuple[str, ...] = ()  # the [limits] the file sets; the others are defaults
    declared: Declared = Declared()
    docs: Docs = Docs()
    model_endpoints: tuple[tuple[str, tuple[str, ...]], ...] = ()
    model_unsupported: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def endpoints_for(self, model: str) -> tuple[str, ...]:
        return dict(self.model_endpoints).get(model, self.declared.endpoints)

    def unsupported_for(self, model: str) -> tuple[str, ...]:
        """What the target says it does not offer, for all models and for this one."""
        return self.declared.unsupported + dict(self.model_unsupported).get(model, ())

    def api_key(self) -> str:
        """The key from the environment; raises TargetError naming the variable to set."""
        if not self.api_key_env:
            raise TargetError(
                f"target '{self.name}' names no api_key_env; add one to {self.source} "
                "or pass --api-key-env VAR"
            )
        value = os.environ.get(self.api_key_env, "").strip()
        if not value:
            raise TargetError(
                f"target '{self.name}' needs an API key: set the environment variable "
                f"{self.api_key_env} (or pass --api-key-env VAR to read another variable)"
            )
        return value


def builtin_targets_dir() -> Path:
    return Path(str(resources.files("conformance.target_files")))


def search_dirs() -> list[Path]:
    dirs = [Path.cwd() / "targets", builtin_targets_dir()]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def known_target_names() -> list[str]:
    return sorted({p.stem for d in search_dirs() for p in d.glob("*.toml")})


def find_target_file(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or os.sep in name_or_path:
        if candidate.is_file():
            return candidate
        raise TargetError(f"target file '{name_or_path}' does not exist")
    for d in search_dirs():
        path = d / f"{name_or_path}.toml"
        if path.is_file():
            return path
    known = ", ".join(known_target_names()) or "none"
    raise TargetError(
        f"unknown target '{name_or_path}': use one of {known}, or a path to a .toml target file"
    )


def _kind(value: object) -> str:
    """How a TOML value reads to the person who wrote it, for error messages."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def _wrong(source: str, field: str, expected: str, value: object) -> TargetError:
    return TargetError(f"{source}: '{field}' must be {expected}, not {value!r} ({_kind(value)})")


def _string(data: dict, field: str, source: str, default: str | None = None) -> str | None:
    value = data.get(field, default)
    if value is not None and not isinstance(value, str):
        raise _wrong(source, field, "a string", value)
    return value


def _table(value: object, field: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise _wrong(source, field, "a table", value)
    return value


def _tuple_of_str(value: object, field: str, source: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(source, field, "a list of strings", value)
    if allowed is not None:
        for item in value:
            if item not in allowed:
                raise TargetError(f"{source}: '{field}' has '{item}', which is not one of {', '.join(allowed)}")
    return tuple(value)


def _limits(data: dict, source: str) -> Limits:
    """[limits], each value of the type its field has (TOML integers count as numbers)."""
    types = typing.get_type_hints(Limits)
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise TargetError(f"{source}: [limits] has unknown key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(types)}")
    for key, value in data.items():
        field = f"limits.{key}"
        wants_integer = types[key] is int or int in typing.get_args(types[key])  # int, or int | None
        if wants_integer:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _wrong(source, field, "an integer", value)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(source, field, "a number of seconds", value)
        if value < 0 or (value == 0 and key not in LIMITS_MAY_BE_ZERO):
            at_least = "0 or more" if key in LIMITS_MAY_BE_ZERO else "more than 0"
            raise TargetError(f"{source}: '{field}' must be {at_least}, not {value!r}")
    return Limits(**data)


def _declared(data: dict, source: str) -> Declared:
    fields = [f.name for f in dataclasses.fields(Declared)]
    bad = sorted(set(data) - set(fields))
    if bad:
        raise TargetError(f"{source}: [declared] has unknown key(s) {', '.join(bad)}; allowed: {', '.join(fields)}")
    allowed = {"endpoints": ENDPOINTS, "modes": MODES}
    return Declared(**{k: _tuple_of_str(v, f"declared.{k}", source, allowed.get(k)) for k, v in data.items()})


def _docs(data: dict, source: str) -> Docs:
    bad = sorted(set(data) - {"url", "claims"})
    if bad:
        raise TargetError(f"{source}: [docs] has unknown key(s) {', '.join(bad)}; allowed: claims, url")
    url = data.get("url", "")
    if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
        raise _wrong(source, "docs.url", "an http(s) link to the documentation", url)
    claims = _table(data.get("claims", {}), "docs.claims", source)
    from .catalogue import load_catalogue

    known = {p.name for p in load_catalogue().parameters}
    for key, value in claims.items():
        if key not in known:
            raise TargetError(f"{source}: [docs.claims] names '{key}', which is no parameter of the catalogue")
        if not isinstance(value, str):
            raise _wrong(source, f"docs.claims.{key}", "a string", value)
    return Docs(url=url, claims=tuple(claims.items()))


def _per_model(data: dict, field: str, source: str, allowed: tuple[str, ...] | None = None):
    return tuple((model, _tuple_of_str(value, f"{field}.{model}", source, allowed))
                 for model, value in _table(data.get(field, {}), field, source).items())


def parse_target(data: dict, source: str) -> Target:
    """Build a Target from parsed TOML, with one-line errors naming the file, the bad field and what it
    must be."""
    known_keys = {
        "name", "description", "base_url", "api_key_env", "embedded", "models",
        "headers", "limits", "declared", "docs", "model_endpoints", "model_unsupported",
    }
    unknown = sorted(set(data) - known_keys)
    if unknown:
        raise TargetError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known_keys))}")
    name = _string(data, "name", source, Path(source).stem)
    if not SAFE_NAME.fullmatch(name):
        raise _wrong(source, "name", "a name usable in file names (letters, digits, '.', '_', '-')", name)
    embedded = data.get("embedded", False)
    if not isinstance(embedded, bool):
        raise _wrong(source, "embedded", "true or false", embedded)
    base_url = _string(data, "base_url", source)
    if not embedded and base_url is None:
        raise TargetError(f"{source}: 'base_url' is required (a string) unless embedded = true")
    api_key_env = _string(data, "api_key_env", source)
    headers = _table(data.get("headers", {}), "headers", source)
    for key, value in headers.items():
        if not isinstance(value, str):
            raise _wrong(source, f"headers.{key}", "a string", value)
    return Target(
        name=name,
        description=_string(data, "description", source, ""),
        base_url=base_url.rstrip("/") if base_url is not None else None,
        api_key_env=api_key_env,
        embedded=embedded,
        models=_tuple_of_str(data.get("models", []), "models", source),
        source=source,
        headers=tuple(headers.items()),
        limits=_limits(_table(data.get("limits", {}), "limits", source), source),
        limits_given=tuple(data.get("limits", {})),
        declared=_declared(_table(data.get("declared", {}), "declared", source), source),
        docs=_docs(_table(data.get("docs", {}), "docs", source), source),
        model_endpoints=_per_model(data, "model_endpoints", source, ENDPOINTS),
        model_unsupported=_per_model(data, "model_unsupported", source),
    )


def url_slug(base_url: str) -> str:
    """Where a server answers, as a name usable in file names: host, port and path (never the scheme,
    credentials or query), e.g. http://localhost:8000/v1 -> localhost-8000-v1."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    where = f"{parts.hostname or ''}-{port or ''}-{parts.path}"
    slug = re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-") or "unnamed"
    if len(slug) > MAX_SLUG:  # still one name per server: the cut part is kept as a hash
        digest = hashlib.sha256(where.encode()).hexdigest()[:8]
        slug = f"{slug[:MAX_SLUG - 9].rstrip('-')}-{digest}"
    return slug


def load_target(
    name_or_path: str,
    base_url: str | None = None,
    api_key_env: str | None = None,
    models: list[str] | None = None,
) -> Target:
    """Load a target by name or path and apply command-line overrides."""
    path = find_target_file(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"target file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"target file {path} cannot be read: {exc}") from None
    target = parse_target(data, str(path))
    changes: dict = {}
    if base_url and base_url.rstrip("/") != target.base_url:
        if not (api_key_env or target.api_key_env):
            raise TargetError("--base-url needs a key: pass --api-key-env VAR naming the variable that holds it")
        base_url = base_url.rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise TargetError(f"target '{target.name}': base URL '{base_url}' must start with http:// or https://")
        # A named target keeps its name (and expectations) at another address: a real engine is
        # started on a free port each time; its history tells the addresses apart (the base URL
        # is part of a run's configuration). The embedded default becomes a target of its own.
        changes.update(base_url=base_url, embedded=False)
        if target.embedded:
            # A server of unknown make declares nothing: refusing an optional parameter is then
            # `unsupported`, refusing a core one or accepting any and ignoring it is a `fail`.
            changes.update(name=f"custom-{url_slug(base_url)}", description=f"OpenAI-compatible server at {base_url}",
                           limits=Limits(), limits_given=(), declared=Declared(endpoints=UNDECLARED_ENDPOINTS, modes=MODES),
                           docs=Docs(), model_endpoints=())
    if api_key_env:
        changes["api_key_env"] = api_key_env
    if models:
        unserved = [m for m in models if m not in target.models]
        if target.embedded and not changes.get("base_url") and unserved:
            # The embedded server serves the models its target file lists, and answers any other with 404
            # model_not_found, as OpenAI does: a run for a mistyped one would judge a server made for it.
            raise TargetError(f"model {', '.join(map(repr, unserved))} is not served by target '{target.name}' "
                              f"(the embedded reference server serves {', '.join(target.models)}): pass --model with "
                              "one of them, or list the models in a target file of your own with embedded = true")
        changes["models"] = tuple(models)
    target = dataclasses.replace(target, **changes)
    if not target.models:
        raise TargetError(f"target '{target.name}' lists no models: add models = [...] to {path} or pass --model ID")
    if not target.embedded and not target.base_url.startswith(("http://", "https://")):
        raise TargetError(f"target '{target.name}': base URL '{target.base_url}' must start with http:// or https://")
    return target
