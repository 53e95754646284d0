"""Replay a bounded sample of the application's own requests to a reference and to the candidate,
and compare the structure of the answers (never the text): status, error envelope, number of
choices, finish reasons, usage, tool-call shapes, stream terminator.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..wire.client import Api, Reply, Runtime
from ..server.connect import connect
from ..config.targets import Target
from ..wire.transport import InfrastructureError
from .features import features_of
from .traffic import Request

# 'stop' against 'length' can come from the models (one ended sooner), not the servers.
MODEL_DEPENDENT = {"stop", "length"}


@dataclasses.dataclass
class Difference:
    field: str
    reference: str
    candidate: str

    @property
    def note(self) -> str:
        if self.field != "finish_reason":
            return ""
        values = set(f"{self.reference}, {self.candidate}".split(", "))
        return "may come from the models rather than the servers" if values <= MODEL_DEPENDENT else ""


@dataclasses.dataclass
class ReplayResult:
    where: str
    endpoint: str
    stream: bool
    models: dict[str, str]  # side -> the model sent
    shapes: dict[str, dict[str, str]]  # side -> field -> value
    differences: list[Difference]
    evidence: str  # path of the evidence file, relative to the report directory


def sample(requests: list[Request], limit: int) -> list[Request]:
    """Up to `limit` requests: one of each distinct feature set first (in file order), then the rest."""
    chosen, seen = [], set()
    for request in requests:
        signature = tuple(features_of(request))
        if signature not in seen:
            seen.add(signature)
            chosen.append(request)
    for request in requests:
        if request not in chosen:
            chosen.append(request)
    return chosen[:limit]


def _calls_shape(calls: list[dict]) -> str:
    shapes = []
    for call in calls:
        function = call.get("function") if isinstance(call.get("function"), dict) else call
        arguments = function.get("arguments")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else None
            args = "JSON object" if isinstance(parsed, dict) else "not a JSON object string"
        except ValueError:
            args = "not valid JSON"
        shapes.append(f"{function.get('name')}({args}){'' if call.get('id') or 'function' not in call else ' no id'}")
    return "; ".join(shapes)


def shape(reply: Reply | None, failure: str = "") -> dict[str, str]:
    """The structure of one answer, as comparable strings."""
    if reply is None:
        return {"status": f"no response ({failure})"}
    out = {"status": str(reply.status)}
    if reply.defect or reply.sdk_error:
        out["body"] = "unreadable"
    if not reply.ok:
        err = reply.error
        out["error envelope"] = ("error." + ", error.".join(k for k in ("message", "type", "param", "code") if k in err)
                                 if err else "not OpenAI's {error: {...}}")
        return out
    if reply.endpoint == "models":
        body = reply.body if isinstance(reply.body, dict) else {}
        out["object"] = str(body.get("object"))
        return out
    choices = reply.choices
    out["choices"] = str(len(choices))
    out["finish_reason"] = ", ".join(str(c.finish_reason) for c in choices)
    usage = reply.usage
    out["usage"] = ("absent" if not usage else
                    ", ".join(k for k in ("prompt_tokens", "completion_tokens", "total_tokens") if k in usage))
    calls = [_calls_shape(c.tool_calls) for c in choices if c.tool_calls]
    functions = [_calls_shape([c.function_call]) for c in choices if c.function_call]
    out["tool_calls"] = " | ".join(calls) or "none"
    out["function_call"] = " | ".join(functions) or "none"
    if reply.stream is not None:
        out["[DONE]"] = "yes" if reply.stream.done else "no"
        out["stream syntax"] = "clean" if not reply.stream.problems else f"{len(reply.stream.problems)} problem(s)"
    return out


def compare(reference: dict[str, str], candidate: dict[str, str]) -> list[Difference]:
    return [Difference(field, reference.get(field, "(absent)"), candidate.get(field, "(absent)"))
            for field in dict.fromkeys([*reference, *candidate]) if reference.get(field) != candidate.get(field)]


def _send(runtime: Runtime, request: Request, model: str) -> tuple[Reply | None, str, Api]:
    mode = "stream" if request.stream else "regular"
    api = Api(runtime, model=model, mode=mode, path="http")
    try:
        if request.endpoint == "models.list":
            return api.list_models(), "", api
        if request.endpoint == "models.retrieve":
            return api.retrieve_model(model), "", api
        return api.create(request.endpoint, {**request.body, "model": model}), "", api
    except InfrastructureError as exc:
        return None, str(exc), api


def _model_for(request: Request, target: Target) -> str:
    asked = request.body.get("model")
    return asked if asked in target.models else target.models[0]


def replay(requests: list[Request], reference: Target, candidate: Target, out_dir: Path,
           candidate_quirks: tuple[str, ...] = ()) -> list[ReplayResult]:
    """Send each request to both targets, compare, and write the evidence under out_dir/replay/."""
    evidence_dir = out_dir / "replay"
    evidence_dir.mkdir(parents=True, exist_ok=True)
    sides = {"reference": (reference, ()), "candidate": (candidate, candidate_quirks)}
    endpoints = {side: connect(target, quirks=quirks) for side, (target, quirks) in sides.items()}
    runtimes = {side: Runtime(sides[side][0], e.base_url, e.api_key) for side, e in endpoints.items()}
    results = []
    try:
        for number, request in enumerate(requests, start=1):
            shapes, models, exchanges = {}, {}, {}
            for side, runtime in runtimes.items():
                models[side] = _model_for(request, runtime.target)
                reply, failure, api = _send(runtime, request, models[side])
                shapes[side] = shape(reply, failure)
                exchanges[side] = [e.to_dict(runtime.redactor) for e in api.evidence.exchanges]
            path = evidence_dir / f"{number:03d}.json"
            path.write_text(json.dumps({"where": request.where, "endpoint": request.endpoint, "models": models,
                                        "shapes": shapes, "exchanges": exchanges}, indent=2), encoding="utf-8")
            results.append(ReplayResult(request.where, request.endpoint, request.stream, models, shapes,
                                        compare(shapes["reference"], shapes["candidate"]),
                                        str(path.relative_to(out_dir))))
    finally:
        for runtime in runtimes.values():
            runtime.close()
        for endpoint in endpoints.values():
            endpoint.close()
    return results
