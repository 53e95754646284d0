"""`conformance export RUN --format litellm|json`: a run's measured support as data other tools use.

- `json`: a plain support profile, per model and parameter (`chat.stop`) the verdict, with the run
  it comes from.
- `litellm`: a LiteLLM proxy `model_list` whose `model_info.supported_openai_params` lists, per
  model, the OpenAI parameters measured as honoured or accepted on every endpoint that has them,
  so that a gateway can drop what the provider ignores or refuses. Extensions are not OpenAI
  parameters and are left out; parameters that were not measured are left out (unknown is not
  support), and so are those that deviate, named in a comment so nobody mistakes them for absent.

A renderer at the end of the pipeline: it reads a run's matrix.json (the data of the report model,
model.py), never the records or the history.
"""

from __future__ import annotations

import json
from collections import defaultdict

FORMATS = ("litellm", "json")
SUPPORTED = ("honoured", "accepted")
REQUIRED = ("model", "messages", "prompt")  # every request has them: not a capability to list


def support_profile(matrix: dict) -> dict:
    run = matrix["run"]
    models: dict[str, dict[str, str]] = defaultdict(dict)
    for row in matrix["parameters"]:
        for model, cell in row["models"].items():
            models[model][f"{row['endpoint']}.{row['parameter']}"] = cell["verdict"]
    return {"format": 1, "run": run["id"], "target": run["target"], "base_url": run["base_url"],
            "finished": run["finished"], "suite_version": run.get("suite_version"),
            "definitions": run.get("definitions"), "models": dict(models)}


def supported_openai_params(matrix: dict, model: str) -> tuple[list[str], list[str]]:
    """(supported, deviating) OpenAI parameter names for one model: supported where every measured
    endpoint says honoured or accepted."""
    verdicts: dict[str, list[str]] = defaultdict(list)
    for row in matrix["parameters"]:
        cell = row["models"].get(model)
        if row["kind"] == "extension" or row["parameter"] in REQUIRED or cell is None or \
                cell["verdict"] == "not measured":
            continue
        verdicts[row["parameter"]].append(cell["verdict"])
    supported = sorted(p for p, seen in verdicts.items() if all(v in SUPPORTED for v in seen))
    deviating = sorted(p for p, seen in verdicts.items() if "deviates" in seen)
    return supported, deviating


def _yaml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def litellm_config(matrix: dict, api_key_env: str | None = None) -> str:
    run = matrix["run"]
    base_url = run["base_url"] if str(run["base_url"]).startswith(("http://", "https://")) else None
    lines = [f"# Measured by openai-conformance {run.get('suite_version', '')}, run {run['id']} of "
             f"{run['target']} ({run['finished']}).",
             "# supported_openai_params: the OpenAI parameters measured as honoured or accepted (INTERPRETING.md).",
             "model_list:"]
    for model in run["models"]:
        supported, deviating = supported_openai_params(matrix, model)
        lines += [f"  - model_name: {_yaml(model)}", "    litellm_params:", f"      model: {_yaml('openai/' + model)}"]
        if base_url:
            lines.append(f"      api_base: {_yaml(base_url)}")
        if api_key_env:
            lines.append(f"      api_key: {_yaml('os.environ/' + api_key_env)}")
        lines.append("    model_info:")
        if deviating:
            lines.append(f"      # accepted with an effect, but a check about it fails: {', '.join(deviating)}")
        lines.append("      supported_openai_params: [" + ", ".join(_yaml(p) for p in supported) + "]")
    return "\n".join(lines) + "\n"


def export(matrix: dict, fmt: str, api_key_env: str | None = None) -> str:
    if fmt == "json":
        return json.dumps(support_profile(matrix), indent=2, ensure_ascii=False) + "\n"
    return litellm_config(matrix, api_key_env)
