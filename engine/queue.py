"""The Huey instance, chosen by ``TQS_QUEUE_URL``: Redis in production, SQLite embedded, memory in tests.

``memory://`` runs tasks immediately inside the caller (Huey's immediate mode). Every backend
honours task priorities (Redis through a sorted set), so scoring runs ahead of queued email.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import redis
from huey import Huey, MemoryHuey, PriorityRedisHuey, SqliteHuey
from huey.storage import MemoryStorage, PriorityRedisStorage, SqliteStorage

QUEUE_NAME = "tutor_quality"
SCORING_PRIORITY = 10  # store and rescore tasks; email tasks keep the default 0 and run when scoring is idle


def create_huey(queue_url: str) -> Huey:
    scheme = urlparse(queue_url).scheme
    if scheme in ("redis", "rediss"):
        # Fail fast when Redis is down: the API has already stored the batch and answers 202 anyway.
        pool = redis.ConnectionPool.from_url(queue_url, socket_connect_timeout=1, socket_timeout=5)
        # A sorted set under its own key: the list an earlier version left under QUEUE_NAME is not read, and
        # the work of any task still in it is queued again by the sweeper from the inbox and rescore_waiting.
        return PriorityRedisHuey(f"{QUEUE_NAME}_prioritized", connection_pool=pool, results=False)
    if scheme == "sqlite":
        path = Path(queue_url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=str(path), results=False)
    if scheme == "memory":
        return MemoryHuey(QUEUE_NAME, immediate=True, results=False)
    raise ValueError(f"unsupported queue URL scheme {scheme!r}: use redis://, sqlite:/// or memory://")



def scoring_tasks_queued(huey: Huey) -> int:
    """Store and rescore tasks waiting in the queue (queued email does not make scoring wait)."""
    storage = huey.storage
    if isinstance(storage, PriorityRedisStorage):  # scores are minus the priority
        return storage.conn.zcount(storage.queue_key, "-inf", -SCORING_PRIORITY)
    if isinstance(storage, SqliteStorage):
        return storage.sql("select count(id) from task where queue=? and priority>=?",
                           (storage.name, SCORING_PRIORITY), results=True)[0][0]
    if isinstance(storage, MemoryStorage):  # a heap of (minus the priority, order, task)
        return sum(1 for negated, _, _ in list(storage._queue) if -negated >= SCORING_PRIORITY)
    return huey.pending_count()
