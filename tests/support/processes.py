"""Real services as subprocesses for end-to-end tests: gunicorn serving the API, Huey consumers, Redis.

The child-process helpers themselves live in :mod:`engine.children` (the demo uses them too).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any, NamedTuple

from engine.children import Service, free_port, tqs_argv, wait_until

__all__ = ["ApiClient", "RedisProcess", "Reply", "Service", "free_port", "redis_server_available", "running",
           "tqs_argv", "wait_until"]


class Reply(NamedTuple):
    """A response: its status, headers and JSON body."""

    status: int
    headers: Message
    body: Any


class ApiClient:
    """Just enough HTTP for tests: JSON in, (status, JSON) out."""

    def __init__(self, base_url: str, api_key: str | None):
        self.base_url, self.api_key = base_url, api_key

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                raw: bytes | None = None) -> tuple[int, Any]:
        reply = self.exchange(method, path, body, headers, raw)
        return reply.status, reply.body

    def exchange(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                 raw: bytes | None = None) -> Reply:
        """The same request, answered with the response headers too (``Retry-After``, say)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, response.headers, json.loads(response.read() or b"null"))
        except urllib.error.HTTPError as error:
            payload = error.read()
            return Reply(error.code, error.headers, json.loads(payload) if payload else None)

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
