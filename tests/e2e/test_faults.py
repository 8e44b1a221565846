"""Faults: a consumer killed mid-batch, Redis going away, the database going away. Nothing is lost."""

import datetime as dt
import random
import signal
import time
from urllib.parse import urlparse, urlunparse

from engine.models import InboxItem, RescoreWaiting
from tests.e2e.test_ingestion import assert_each_session_counted_once, assert_rates_match
from tests.factories import raw_session
from tests.support.processes import wait_until
from tests.support.proxy import TcpProxy


def many_sessions(count: int, tutors: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    return [
        raw_session(f"k{seed}-{i}", f"tutor-{rng.randrange(tutors)}", now - dt.timedelta(hours=rng.uniform(1, 2000)),
                    *(("rescheduled", "tutor") if rng.random() < 0.15 else ("completed",)))
        for i in range(count)
    ]


def test_a_consumer_killed_mid_batch_loses_nothing(postgres_database, postgres_url, private_redis, make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0")
    records = many_sessions(5000, tutors=60, seed=1)
    for start in range(0, len(records), 500):
        assert stack.client.request("POST", "/api/sessions", records[start:start + 500])[0] == 202
    wait_until(lambda: stack.inbox_counts().get("processed", 0) > 0, 60, "the first sessions to be stored")
    stack.worker.kill(signal.SIGKILL)
    pending, orphaned = stack.inbox_counts().get("pending", 0), claims_held(postgres_database)
    assert pending + orphaned > 0, "the consumer finished before it could be killed; the test proves nothing"
    stack.restart_worker()
    stack.wait_until_drained(len(records), timeout=120)  # lost tasks swept, lapsed claims taken over
    assert_each_session_counted_once(postgres_database, len(records))
    assert_rates_match(stack, records, sorted({r["tutor_id"] for r in records})[:10])


def claims_held(database) -> int:
    """Waiting tutors a worker has claimed and not finished (the killed one's, once it is dead)."""
    with database.connection_context():
        return RescoreWaiting.select().where(RescoreWaiting.claimed_until > dt.datetime.now(dt.UTC)).count()


def test_with_redis_down_the_api_still_accepts_and_the_backlog_drains_when_it_returns(
        postgres_database, postgres_url, private_redis, make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0")
    private_redis.kill(signal.SIGKILL)
    records = many_sessions(300, tutors=10, seed=2)
    started = time.monotonic()
    status, body = stack.client.request("POST", "/api/sessions", records)
    assert status == 202 and body["accepted"] == 300
    assert time.monotonic() - started < 10
    status, health = stack.client.request("GET", "/api/health")
    assert status == 200 and health["status"] == "degraded" and not health["queue"]["ok"]
    assert health["backlog"]["pending"] == 300
    private_redis.start()
    wait_until(private_redis.ping, 10, "redis-server to come back")
    stack.wait_until_drained(len(records), timeout=90)
    assert_each_session_counted_once(postgres_database, len(records))


def test_with_the_database_gone_the_api_answers_503_stores_nothing_and_recovers(
        postgres_database, postgres_url, make_stack, tmp_path):
    real = urlparse(postgres_url)
    proxy = TcpProxy(real.port or 5432).start()
    via_proxy = urlunparse(real._replace(netloc=f"{real.username}@127.0.0.1:{proxy.port}"))
    stack = make_stack(postgres_database, via_proxy, f"sqlite:///{tmp_path / 'q.db'}")
    before = many_sessions(20, tutors=3, seed=3)
    assert stack.client.request("POST", "/api/sessions", before)[0] == 202
    stack.wait_until_drained(20)

    proxy.cut()
    during = many_sessions(20, tutors=3, seed=4)
    status, body = stack.client.request("POST", "/api/sessions", during)
    assert status == 503 and body["error"]["title"] == "Database unavailable"
    status, health = stack.client.request("GET", "/api/health")
    assert status == 503 and health["status"] == "unavailable"

    proxy = TcpProxy(real.port or 5432, port=proxy.port).start()
    after = many_sessions(20, tutors=3, seed=5)
    wait_until(lambda: stack.client.request("POST", "/api/sessions", after)[0] == 202, 30,
               "the API to accept again once the database is back")
    stack.wait_until_drained(40, timeout=60)
    with postgres_database.connection_context():
        stored = {row.session_id for row in InboxItem.select(InboxItem.session_id)}
    assert stored == {r["session_id"] for r in before + after}  # nothing of the refused batch, all of the others
    assert_each_session_counted_once(postgres_database, 40)
    proxy.cut()
