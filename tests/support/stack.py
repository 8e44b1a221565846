"""Fixtures for a real stack per test: gunicorn serving the API and a Huey consumer, as subprocesses.

Redis is a private redis-server on a free port (so a test may stop it); without
redis-server installed these tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.db import bind_database, open_database, release_connections
from engine.migrations import migrate
from engine.models import InboxItem, RescoreWaiting
from tests.support.databases import under_ci
from tests.support.processes import (
    ApiClient,
    RedisProcess,
    Service,
    free_port,
    redis_server_available,
    tqs_argv,
    wait_until,
)

API_KEY = "e2e-key"


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisProcess]:
    if not redis_server_available():
        message = "redis-server is not installed here"
        if under_ci():
            pytest.fail("CI=true requires Redis: " + message)
        pytest.skip(message)
    redis = RedisProcess(free_port(), tmp_path).start()
    wait_until(redis.ping, 10, "redis-server to answer PING")
    yield redis
    redis.kill()


@pytest.fixture
def sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    database = bind_database(open_database(url))
    migrate(database)
    yield database, url
    release_connections(database)


@dataclass
class Stack:
    """The API and a worker on one database and one queue."""

    database_url: str
    queue_url: str
    log_dir: Path
    database: object
    worker_processes: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        port = free_port()
        self.client = ApiClient(f"http://127.0.0.1:{port}", API_KEY)
        env = {**os.environ, "TQS_DATABASE_URL": self.database_url, "TQS_QUEUE_URL": self.queue_url,
               "TQS_API_KEYS": API_KEY, "TQS_DATA_DIR": str(self.log_dir), "TQS_SWEEP_INTERVAL_SECONDS": "1",
               "TQS_SWEEP_AFTER_SECONDS": "3", "TQS_RESCORE_LEASE_SECONDS": "5",
               # These stacks test ingestion and scoring; email delivery has its own stack test (tests/notifications).
               "TQS_EMAIL_POLICY": "off", **self.extra_env}
        self.api = Service("api", tqs_argv("api", "--bind", f"127.0.0.1:{port}", "--workers", "2"), env, self.log_dir)
        self.worker = self.new_worker(env)
        self.env = env

    def new_worker(self, env: dict[str, str] | None = None) -> Service:
        return Service("worker", tqs_argv("worker", "--workers", str(self.worker_processes)), env or self.env,
                       self.log_dir)

    def start(self) -> Stack:
        self.api.start()
        self.worker.start()
        wait_until(self.client.healthy, 30, f"the API to answer (log: {self.api.log()[-2000:]})")
        return self

    def stop(self) -> None:
        self.worker.kill()
        self.api.kill()

    def restart_worker(self) -> None:
        self.worker = self.new_worker()
        self.worker.start()

    def inbox_counts(self) -> dict[str, int]:
        with self.database.connection_context():
            rows = InboxItem.select(InboxItem.status).tuples()
            counts: dict[str, int] = {}
            for (status,) in rows:
                counts[status] = counts.get(status, 0) + 1
            return counts

    def tutors_waiting(self) -> int:
        with self.database.connection_context():
            return RescoreWaiting.select().count()

    def wait_until_drained(self, expected_items: int, timeout: float = 90) -> dict[str, int]:
        """Until every inbox row is finished and no tutor waits for a rescore."""
        def drained():
            counts = self.inbox_counts()
            done = sum(counts.values()) == expected_items and not counts.get("pending") and not self.tutors_waiting()
            return counts if done else None
        return wait_until(drained, timeout, f"{expected_items} inbox rows to be processed and rescored "
                                            f"(worker log tail: {self.worker.log()[-1500:]})", interval=0.2)


@pytest.fixture
def make_stack(tmp_path):
    stacks: list[Stack] = []

    def make(database, database_url: str, queue_url: str, log_dir: Path | None = None, **kwargs) -> Stack:
        """``log_dir`` (default: the test's folder) keeps two stacks' logs and data apart."""
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
        stack = Stack(database_url, queue_url, log_dir or tmp_path, database, **kwargs)
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()
