"""The real services a scale benchmark runs against: a private Redis, ``tqs api`` and ``tqs worker``.

Each is a child process (:class:`engine.children.Service`) with its log in the run's directory,
started with the documented worker counts unless told otherwise, and stopped with its whole
process group. A private ``redis-server`` (no persistence) keeps the queue, and its memory, ours.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from engine.children import Service, answers, free_port, tqs_argv, wait_until

API_KEY = "bench-scale-key"
AUTH_HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def documented_api_workers() -> int:
    """``tqs api``'s default: 2 x cores gunicorn sync workers."""
    return 2 * (os.cpu_count() or 1)


def documented_queue_workers() -> int:
    """``tqs worker``'s default: one consumer process per core."""
    return os.cpu_count() or 1


def service_env(database_url: str, queue_url: str, data_dir: Path, secret: str | None = "new",
                **extra: str) -> dict[str, str]:
    """The environment of our services: no inherited ``TQS_*``, ingest not rate-limited (the bench is the one
    client, posting as fast as the API accepts), a new secret key shared by the API and the worker
    (``secret=None``: the key file in ``data_dir``, for a database sealed with it)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TQS_")}
    env.update(TQS_DATABASE_URL=database_url, TQS_QUEUE_URL=queue_url, TQS_API_KEYS=API_KEY,
               TQS_DATA_DIR=str(data_dir), TQS_INGEST_RATE_LIMIT="off")
    if secret is not None:
        env["TQS_SECRET_KEY"] = "bench-" + secrets.token_hex(24) if secret == "new" else secret
    env.update(extra)
    return env


@dataclass
class Stack:
    """The running services; ``port`` is the API's."""

    work_dir: Path
    port: int = 0
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self, name: str) -> int | None:
        service = self.services.get(name)
        return service.process.pid if service and service.running() else None

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        service = Service(name, argv, env, self.work_dir).start()
        self.services[name] = service
        return service

    def check_alive(self) -> None:
        for service in self.services.values():
            if not service.running():
                raise RuntimeError(f"{service.name} exited:\n{service.log()[-3000:]}")


@contextlib.contextmanager
def private_redis(stack: Stack) -> Iterator[str]:
    """A ``redis-server`` of our own on a free port, without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not installed: run `make services`")
    port = free_port()
    stack.start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                dict(os.environ))
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)

    def pong() -> bool:
        stack.check_alive()
        with contextlib.suppress(redis.RedisError):
            return bool(client.ping())
        return False

    wait_until(pong, 30, "the private redis-server to answer")
    yield url


def start_api(stack: Stack, env: dict[str, str], workers: int) -> None:
    stack.port = free_port()
    stack.start("api", tqs_argv("api", "--bind", f"127.0.0.1:{stack.port}", "--workers", str(workers)), env)

    def up() -> bool:
        stack.check_alive()
        return answers(f"{stack.base}/api/health")

    wait_until(up, 120, f"the API on {stack.base} (log {stack.work_dir / 'api.log'})", interval=0.2)


def start_worker(stack: Stack, env: dict[str, str], workers: int) -> None:
    worker = stack.start("worker", tqs_argv("worker", "--workers", str(workers)), env)

    def up() -> bool:
        stack.check_alive()
        return "event=worker_started" in worker.log()

    wait_until(up, 120, f"the worker to start (log {worker.log_path})", interval=0.2)


def stop_all(stack: Stack) -> None:
    """The API and worker first (they use Redis), then Redis."""
    for name in sorted(stack.services, key=lambda n: n == "redis"):
        stack.services[name].stop()
