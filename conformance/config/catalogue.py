"""The parameter catalogue and clause references (data in conformance/config/data/parameters.toml)."""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Any


import tomllib



@dataclasses.dataclass(frozen=True)
class InvalidValue:
    value: Any
    why: str
    param: str  # what OpenAI names in error.param


@dataclasses.dataclass(frozen=True)
class Parameter:
    name: str
    endpoints: tuple[str, ...]
    type: str
    kind: str = "openai"
    required: bool = False
    optional: bool = True
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    max_items: int | None = None
    values: tuple[str, ...] = ()  # the allowed values of an enum
    observable: bool = True  # False: the effect cannot be seen from outside (verdict at best `accepted`)
    sample: Any = None  # a valid value, for the acceptance check of unobservable parameters
    invalid: tuple[InvalidValue, ...] = ()

    @property
    def is_extension(self) -> bool:
        return self.kind == "extension"


@dataclasses.dataclass(frozen=True)
class Catalogue:
    parameters: tuple[Parameter, ...]
    clauses: dict[str, str]
    references: dict[str, str]
    features: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> what it covers ([features])

    def for_endpoint(self, endpoint: str) -> list[Parameter]:
        return [p for p in self.parameters if endpoint in p.endpoints]

    def get(self, name: str, endpoint: str | None = None) -> Parameter:
        """The parameter of that name (of that endpoint: `logprobs` differs between the two)."""
        for p in self.parameters:
            if p.name == name and (endpoint is None or endpoint in p.endpoints):
                return p
        raise KeyError(name)

    def clause(self, endpoint: str, name: str) -> str:
        return self.clauses[endpoint].format(name=name)

    def reference(self, key: str) -> str:
        return self.references[key]

    def feature_ids(self) -> frozenset[str]:
        """The closed list of check features: <endpoint>.<parameter> of every parameter, and [features]."""
        return frozenset({f"{e}.{p.name}" for p in self.parameters for e in p.endpoints} | set(self.features))


@functools.cache
def load_catalogue() -> Catalogue:
    text = resources.files("conformance.config.data").joinpath("parameters.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    params = []
    for entry in data["parameter"]:
        entry = dict(entry)
        invalid = tuple(
            InvalidValue(value=i["value"], why=i["why"], param=i.get("param", entry["name"]))
            for i in entry.pop("invalid", [])
        )
        entry["endpoints"] = tuple(entry["endpoints"])
        entry["values"] = tuple(entry.get("values", ()))
        params.append(Parameter(invalid=invalid, **entry))
    return Catalogue(parameters=tuple(params), clauses=dict(data["clauses"]), references=dict(data["references"]),
                     features=dict(data.get("features", {})))
