"""Run the suite against a real third-party server: `transformers serve` with a tiny local model.

Builds the model (tools/tiny_model.py), starts `transformers serve` on 127.0.0.1, runs
`conformance run --target transformers-serve` (which compares the run with
expectations/transformers-serve.toml), stops the server, and exits with the run's exit code:
0 when the server behaved exactly as its expectations say.

    tox -e realserver            # or: python tools/realserver.py [extra conformance run args]
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
MODEL = "tiny-model"  # the model id transformers serve reports is the folder name it was given
KEY_ENV = "TRANSFORMERS_SERVE_KEY"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"transformers serve exited with {server.returncode}; see {BUILD / 'serve.log'}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"transformers serve did not answer on {url} within {seconds:.0f}s")


def main(extra: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "tools"))
    from tiny_model import build

    BUILD.mkdir(exist_ok=True)
    if not (BUILD / MODEL / "config.json").is_file():
        build(BUILD / MODEL)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(BUILD / "serve.log", "w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "transformers"), "serve", MODEL,
                               "--host", "127.0.0.1", "--port", str(port)],
                              cwd=BUILD, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(url, server)
        # -P: import the installed package, not the source folder beside the current directory
        # (the installed copy is where conformance.suites and conformance.target_files live).
        run = [sys.executable, "-P", "-m", "conformance", "run", "--target", "transformers-serve", "--base-url", url,
               "--report-dir", str(ROOT / "reports" / "transformers-serve"), *extra]
        env[KEY_ENV] = env.get(KEY_ENV) or "any-key-transformers-serve-accepts"
        return subprocess.run(run, cwd=ROOT, env=env).returncode
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
