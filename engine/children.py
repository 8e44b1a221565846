"""Child processes: the demo's API, worker and dashboard, the tests' and benchmarks' real services.

Each child runs in its own session (so a terminal's Ctrl-C reaches only the parent, which
stops it), writes its output to a log file, and is stopped with its whole process group.
Every wait is on a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, timeout: float = 2) -> bool:
    """Whether an HTTP server answers ``url`` with a success, for waiting on a child to listen."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:  # refused, timed out, or an HTTP error status
        return False


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05,
               pause: Callable[[float], None] = time.sleep) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` at the deadline.

    ``pause`` waits between polls: a browser test passes Playwright's own wait, which keeps
    its events (navigations, dialogs) flowing, where ``time.sleep`` would hold them back.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause(interval)


def tqs_argv(*args: str) -> list[str]:
    """The ``tqs`` command line, run with this interpreter."""
    return [sys.executable, "-m", "engine", *args]


class Service:
    """A child process with its output in ``<log_dir>/<name>.log``, stopped (and reaped) with its group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 20) -> None:
        """Signal the whole process group (gunicorn and consumer workers included) and reap it."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
