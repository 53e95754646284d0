"""Targets: one API deployment each, described by a TOML file (data, not code).

A target file names the base URL, the *name* of the environment variable that holds the key
(never a key), the models, limits, and what the provider declares it supports.  Command-line
overrides (`--base-url`, `--api-key-env`, `--model`) are applied on top.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENDPOINTS = ("chat", "completions", "models")
MODES = ("regular", "stream")


class TargetError(Exception):
    """A problem with the target configuration; its message is one line naming the fix."""


@dataclasses.dataclass(frozen=True)
class Limits:
    concurrency: int = 4
    requests_per_minute: int | None = None
    timeout_seconds: float = 60.0  # each read; a stalled stream is retried after this long
    stream_deadline_seconds: float = 300.0  # a stream still going after this long is a deviation
    retry_attempts: int = 5  # attempts per request on transport failures and 408/429/502/503/504
    retry_base_seconds: float = 0.5  # first backoff, doubling; Retry-After wins when the target sends it
    retry_max_delay_seconds: float = 30.0  # total backoff per request
    context_tokens: int = 131072  # the models' context window, for the context-length check


@dataclasses.dataclass(frozen=True)
class Declared:
    endpoints: tuple[str, ...] = ENDPOINTS
    modes: tuple[str, ...] = MODES
    parameters: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()  # parameters the target says it does not offer


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
    declared: Declared = Declared()
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


def _tuple_of_str(value: object, field: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TargetError(f"{source}: '{field}' must be a list of strings")
    return tuple(value)


def parse_target(data: dict, source: str) -> Target:
    """Build a Target from parsed TOML, with one-line errors naming the bad field."""
    known_keys = {
        "name", "description", "base_url", "api_key_env", "embedded", "models",
        "headers", "limits", "declared", "model_endpoints", "model_unsupported",
    }
    unknown = sorted(set(data) - known_keys)
    if unknown:
        raise TargetError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known_keys))}")
    name = data.get("name") or Path(source).stem
    embedded = bool(data.get("embedded", False))
    base_url = data.get("base_url")
    if not embedded and not isinstance(base_url, str):
        raise TargetError(f"{source}: 'base_url' is required (a string) unless embedded = true")
    if "api_key_env" in data and not isinstance(data["api_key_env"], str):
        raise TargetError(f"{source}: 'api_key_env' must be the name of an environment variable")
    models = _tuple_of_str(data.get("models", []), "models", source)
    limits_data = data.get("limits", {})
    if not isinstance(limits_data, dict):
        raise TargetError(f"{source}: [limits] must be a table")
    try:
        limits = Limits(**limits_data)
    except TypeError as exc:
        raise TargetError(f"{source}: [limits] {exc}") from None
    declared_data = data.get("declared", {})
    if not isinstance(declared_data, dict):
        raise TargetError(f"{source}: [declared] must be a table")
    declared_fields = {f.name for f in dataclasses.fields(Declared)}
    bad = sorted(set(declared_data) - declared_fields)
    if bad:
        raise TargetError(f"{source}: [declared] has unknown key(s) {', '.join(bad)}")
    declared = Declared(**{k: _tuple_of_str(v, f"declared.{k}", source) for k, v in declared_data.items()})
    for endpoint in declared.endpoints:
        if endpoint not in ENDPOINTS:
            raise TargetError(f"{source}: declared endpoint '{endpoint}' is not one of {', '.join(ENDPOINTS)}")
    headers = data.get("headers", {})
    if not isinstance(headers, dict):
        raise TargetError(f"{source}: [headers] must be a table of strings")
    model_endpoints = data.get("model_endpoints", {})
    model_unsupported = data.get("model_unsupported", {})
    if not isinstance(model_endpoints, dict) or not isinstance(model_unsupported, dict):
        raise TargetError(f"{source}: [model_endpoints] and [model_unsupported] must be tables of model -> list")
    return Target(
        name=name,
        description=data.get("description", ""),
        base_url=base_url.rstrip("/") if isinstance(base_url, str) else None,
        api_key_env=data.get("api_key_env"),
        embedded=embedded,
        models=models,
        source=source,
        headers=tuple((str(k), str(v)) for k, v in headers.items()),
        limits=limits,
        declared=declared,
        model_endpoints=tuple(
            (m, _tuple_of_str(e, f"model_endpoints.{m}", source)) for m, e in model_endpoints.items()
        ),
        model_unsupported=tuple(
            (m, _tuple_of_str(u, f"model_unsupported.{m}", source)) for m, u in model_unsupported.items()
        ),
    )


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
    if base_url:
        if not (api_key_env or target.api_key_env):
            raise TargetError("--base-url needs a key: pass --api-key-env VAR naming the variable that holds it")
        changes.update(base_url=base_url.rstrip("/"), embedded=False)
        if target.embedded:
            # A server of unknown make declares nothing: refusing an optional parameter is then
            # `unsupported`, refusing a core one or accepting any and ignoring it is a `fail`.
            changes.update(name="custom", description=f"OpenAI-compatible server at {base_url}", limits=Limits(),
                           declared=Declared(endpoints=ENDPOINTS, modes=MODES), model_endpoints=())
    if api_key_env:
        changes["api_key_env"] = api_key_env
    if models:
        changes["models"] = tuple(models)
    target = dataclasses.replace(target, **changes)
    if not target.models:
        raise TargetError(f"target '{target.name}' lists no models: add models = [...] to {path} or pass --model ID")
    if not target.embedded and not target.base_url.startswith(("http://", "https://")):
        raise TargetError(f"target '{target.name}': base URL '{target.base_url}' must start with http:// or https://")
    return target
