"""Sending alone: a failure seen while other workers' requests were in flight, confirmed with none.

On a target whose concurrency the target file does not state (measured, or the default), what one
check sees may be another's doing: a server that cuts a running stream when another request comes,
or slows and times out under load. So every request of the run holds the gate shared, and an
instance that failed runs again holding it alone: no other request of the run is in flight then,
none starts until it is done. Its outcome is what it shows alone.

Across the run's processes (pytest-xdist workers) by file locks (fcntl.flock) in the run's shared
folder: `gate` held shared by each process with a request in flight, exclusively by the one
confirming; `turnstile` taken briefly before the shared lock, and held by the one waiting to confirm,
so that a steady flow of new requests cannot keep it waiting forever.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no confirming alone
    fcntl = None


class AloneGate:
    def __init__(self, folder: Path | None):
        """`folder`: the run's shared folder; None (or no fcntl): the gate is open and confirms nothing."""
        self.active = folder is not None and fcntl is not None
        self._folder = folder
        self._files: tuple | None = None
        self._lock = threading.Lock()
        self._holders = 0  # this process's requests in flight (threads of one check share the lock)
        self._alone = False

    def _opened(self):
        if self._files is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            self._files = (open(self._folder / "turnstile.lock", "a+b"), open(self._folder / "gate.lock", "a+b"))
        return self._files

    @contextlib.contextmanager
    def shared(self):
        """Around one request: waits while another process confirms alone."""
        if not self.active or self._alone:
            yield
            return
        with self._lock:
            if self._holders == 0:
                turnstile, gate = self._opened()
                fcntl.flock(turnstile, fcntl.LOCK_EX)
                fcntl.flock(turnstile, fcntl.LOCK_UN)
                fcntl.flock(gate, fcntl.LOCK_SH)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    fcntl.flock(self._opened()[1], fcntl.LOCK_UN)

    @contextlib.contextmanager
    def alone(self):
        """No other request of the run in flight until the block ends."""
        if not self.active:
            yield
            return
        turnstile, gate = self._opened()
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            self._alone = True
            try:
                yield
            finally:
                self._alone = False
                fcntl.flock(gate, fcntl.LOCK_UN)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._files is not None:
            for f in self._files:
                f.close()
            self._files = None
