"""LiteLLM's proxy server as a real target: in front of the embedded reference server.

A proxy is the other common way to "OpenAI-compatible": an application talks to LiteLLM, which
talks to the model server. Put in front of the reference server (OpenAI's behaviour, no quirk),
every deviation the suite finds is the proxy's own translation: no model or engine is mixed in.

`prepare()` (called by tools/realserver.py --engine litellm) starts the reference server in a
process of its own, for as long as this interpreter lives, and writes LiteLLM's config for it:

    python tools/litellm_proxy.py [UPSTREAM_URL]   # print the config it would write for that upstream
"""

from __future__ import annotations

import atexit
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
UPSTREAM_MODELS = ("ref-small",)
UPSTREAM_KEY = "reference-key-behind-litellm"


def config_text(upstream_url: str, models=UPSTREAM_MODELS) -> str:
    """LiteLLM's proxy config (YAML; JSON is YAML): each model passed through to the OpenAI-compatible
    upstream under its own name, the proxy's own key read from LITELLM_MASTER_KEY, no database."""
    config = {
        "model_list": [{"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream_url,
                                                             "api_key": UPSTREAM_KEY}} for m in models],
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
        # No retry of its own, so the evidence shows what one request to the proxy does.
        "litellm_settings": {"num_retries": 0, "telemetry": False},
    }
    return json.dumps(config, indent=2) + "\n"


def prepare(model_dir: Path | None = None) -> dict[str, str]:
    """What tools/realserver.py fills into LiteLLM's command line: the config, upstream started."""
    from conformance.server.process import ServerProcess

    upstream = ServerProcess(UPSTREAM_KEY, UPSTREAM_MODELS)
    atexit.register(upstream.stop)
    BUILD.mkdir(exist_ok=True)
    path = BUILD / "litellm.yaml"
    path.write_text(config_text(upstream.base_url), encoding="utf-8")
    return {"litellm_config": str(path), "upstream": upstream.base_url}


if __name__ == "__main__":
    print(config_text(sys.argv[1] if sys.argv[1:] else "http://127.0.0.1:PORT/v1"), end="")
