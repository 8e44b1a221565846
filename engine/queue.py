"""The Huey instance, chosen by ``TQS_QUEUE_URL``: Redis in production, SQLite embedded, memory in tests.

``memory://`` runs tasks immediately inside the caller (Huey's immediate mode).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import redis
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

QUEUE_NAME = "tutor_quality"


def create_huey(queue_url: str) -> Huey:
    scheme = urlparse(queue_url).scheme
    if scheme in ("redis", "rediss"):
        # Fail fast when Redis is down: the API has already stored the batch and answers 202 anyway.
        pool = redis.ConnectionPool.from_url(queue_url, socket_connect_timeout=1, socket_timeout=5)
        return RedisHuey(QUEUE_NAME, connection_pool=pool, results=False)
    if scheme == "sqlite":
        path = Path(queue_url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=str(path), results=False)
    if scheme == "memory":
        return MemoryHuey(QUEUE_NAME, immediate=True, results=False)
    raise ValueError(f"unsupported queue URL scheme {scheme!r}: use redis://, sqlite:/// or memory://")

