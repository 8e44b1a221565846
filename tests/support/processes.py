"""Real services as subprocesses for end-to-end tests: gunicorn serving the API, Huey consumers, Redis.

Every wait is on a condition (a port answering, a count reached) with a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class Service:
    """A child process with its output in a log file, stopped (and reaped) on exit."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (gunicorn and consumer workers included) and reap it."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def tqs_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


class ApiClient:
    """Just enough HTTP for tests: JSON in, (status, JSON) out."""

    def __init__(self, base_url: str, api_key: str | None):
        self.base_url, self.api_key = base_url, api_key

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            return error.code, json.loads(payload) if payload else None

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/api/health")[0] in (200, 503)
        except (urllib.error.URLError, ConnectionError, OSError):
            return False


def redis_server_available() -> bool:
    return shutil.which("redis-server") is not None


class RedisProcess(Service):
    """A private redis-server on its own port, so a test can stop and restart it freely."""

    def __init__(self, port: int, log_dir: Path):
        super().__init__(f"redis-{port}", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no", "--dir", str(log_dir)],
                         dict(os.environ), log_dir)
        self.port = port

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def running(*services: Service) -> Iterator[None]:
    try:
        for service in services:
            service.start()
        yield
    finally:
        for service in reversed(services):
            service.kill()
