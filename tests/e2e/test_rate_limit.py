"""The ingest rate limit is one count per key across every gunicorn worker: in Redis when it is the queue,
in the database otherwise. Requests sent at once (so both workers answer) get exactly the limit accepted."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import raw_session

LIMIT = 5


def post_at_once(stack, count: int) -> list:
    now = dt.datetime.now(dt.UTC)

    def post(i: int):
        return stack.client.exchange("POST", "/api/sessions", raw_session(f"rl-{i}", f"t{i % 3}", now))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(post, range(count)))


@pytest.mark.parametrize("queue", ["redis", "sqlite"])
def test_the_limit_is_shared_by_every_api_worker(queue, request, make_stack, tmp_path):
    if queue == "redis":
        database, url = request.getfixturevalue("postgres_database"), request.getfixturevalue("postgres_url")
        queue_url = f"redis://127.0.0.1:{request.getfixturevalue('private_redis').port}/0"
    else:
        database, url = request.getfixturevalue("sqlite_database")
        queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    stack = make_stack(database, url, queue_url, extra_env={"TQS_INGEST_RATE_LIMIT": f"{LIMIT}/60"})
    replies = post_at_once(stack, 12)
    accepted = [reply for reply in replies if reply.status == 202]
    refused = [reply for reply in replies if reply.status == 429]
    assert len(accepted) == LIMIT and len(refused) == 12 - LIMIT, [reply.status for reply in replies]
    assert all(1 <= int(reply.headers["Retry-After"]) <= 60 for reply in refused)
    stack.wait_until_drained(LIMIT)
    assert "Traceback" not in stack.api.log()
