"""Requests per API key in fixed windows, counted where every API process sees the same count.

Redis counts them when it is the queue (one INCR per request); otherwise the database does (one
upsert). A limiter that cannot reach Redis lets the request through: ingestion must keep accepting
while the queue is down, and the inbox is what protects the database then.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee
import redis

from engine.config import RateLimit
from engine.logs import log_event
from engine.sql import Sql

logger = logging.getLogger("tutor_quality.api")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds until the window ends (when refused)


class RedisCounter:
    def __init__(self, url: str):
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def count(self, key_name: str, window: int, seconds: float) -> int | None:
        """This request's number in the window, or ``None`` when Redis cannot be reached."""
        name = f"tqs:ratelimit:{key_name}:{window}"
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, math.ceil(seconds) + 1)
            return int(pipe.execute()[0])
        except redis.RedisError as exc:
            log_event(logger, "rate_limit_unavailable", logging.WARNING, error=type(exc).__name__)
            return None


class DatabaseCounter:
    def __init__(self, database: peewee.Database):
        self._database = database

    def count(self, key_name: str, window: int, seconds: float) -> int | None:
        sql = Sql(self._database)
        with self._database.atomic():
            count = sql.all(
                "INSERT INTO rate_limit_windows (key_name, window_start, requests) VALUES ({p}, {p}, 1) "
                "ON CONFLICT (key_name, window_start) DO UPDATE SET requests = rate_limit_windows.requests + 1 "
                "RETURNING requests", (key_name, window))[0][0]
            if count == 1:  # the key's first request of a window: its older windows are done with
                sql.run("DELETE FROM rate_limit_windows WHERE key_name = {p} AND window_start < {p}",
                        (key_name, window))
        return count


class RateLimiter:
    def __init__(self, limit: RateLimit, counter: RedisCounter | DatabaseCounter,
                 clock: Callable[[], float] = time.time):
        self._limit, self._counter, self._clock = limit, counter, clock

    @property
    def limit(self) -> RateLimit:
        return self._limit

    def check(self, key_name: str) -> Verdict:
        now = self._clock()
        window = int(now // self._limit.seconds)
        count = self._counter.count(key_name, window, self._limit.seconds)
        if count is None or count <= self._limit.requests:
            return Verdict(True, 0)
        return Verdict(False, max(1, math.ceil((window + 1) * self._limit.seconds - now)))


def limiter_for(limit: RateLimit | None, queue_url: str, database: peewee.Database) -> RateLimiter | None:
    if limit is None:
        return None
    counter = RedisCounter(queue_url) if queue_url.startswith(("redis://", "rediss://")) else DatabaseCounter(database)
    return RateLimiter(limit, counter)
