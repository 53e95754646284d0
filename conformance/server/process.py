"""The embedded reference server in a process of its own.

A pytest-xdist controller handles three reports per check instance from every worker; a server
thread in the same process waits for the interpreter lock behind that work, and the workers wait
for the server. In its own process it answers as soon as a core is free (the benchmark, part (g),
shows the cores idle otherwise).

The parent writes the settings (key included) as one JSON line to the child's stdin and reads the
base URL back from its stdout. Closing stdin stops the child, which then reports the faults it
injected; a parent that dies closes the pipe too, so no server outlives its run.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from .faults import Faults


class ServerProcess:
    """A ReferenceServer in a child process; `stop()` ends it and brings its fault counts back."""

    def __init__(self, api_key: str, models: tuple[str, ...], quirks=(), faults: Faults | None = None,
                 request_log: str | None = None, latency: float = 0.0, token_latency: float = 0.0,
                 serial: bool = False):
        self.faults = faults
        settings = {"api_key": api_key, "models": list(models), "quirks": list(quirks), "request_log": request_log,
                    "latency": latency, "token_latency": token_latency, "serial": serial,
                    "faults": None if faults is None else dataclasses.asdict(faults)}
        self.process = subprocess.Popen([sys.executable, "-m", "conformance.server.process"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, encoding="utf-8")
        self.process.stdin.write(json.dumps(settings) + "\n")
        self.process.stdin.flush()
        started = self.process.stdout.readline()
        if not started:
            code = self.process.wait()
            raise RuntimeError(f"the embedded reference server did not start (exit {code}); see the lines above")
        self.base_url = json.loads(started)["base_url"]

    def stop(self) -> None:
        try:
            ended, _ = self.process.communicate(timeout=10)  # closes stdin: the child stops
        except subprocess.TimeoutExpired:
            self.process.kill()
            ended, _ = self.process.communicate()
        if ended.strip() and self.faults is not None:
            self.faults.injected.update(json.loads(ended)["injected"])


def main() -> int:
    import signal

    from .http import ReferenceServer

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us

    settings = json.loads(sys.stdin.readline())
    faults = Faults(**settings["faults"]) if settings["faults"] else None
    server = ReferenceServer(**{**settings, "models": tuple(settings["models"]), "faults": faults}).start()
    print(json.dumps({"base_url": server.base_url}), flush=True)
    sys.stdin.read()  # until the parent closes the pipe, or dies
    server.stop()
    print(json.dumps({"injected": faults.injected if faults else {}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
