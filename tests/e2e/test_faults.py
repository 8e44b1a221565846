"""Faults during a replay: a consumer killed mid-rescore, Redis stopped, PostgreSQL restarted, the database
unreachable, the SMTP server down. Nothing is lost, nothing counted or sent twice, and the scores come out as
a clean run's."""

import concurrent.futures
import datetime as dt
import random
import signal
import time
from collections import Counter
from urllib.parse import urlparse, urlunparse

import pytest

from engine.db import open_database, release_connections
from engine.migrations import migrate
from engine.models import (
    MODELS,
    EmailReport,
    InboxItem,
    RescoreWaiting,
    RiskEvent,
    RuleFailure,
    ScoreSnapshot,
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorScore,
)
from engine.personal import PersonalDataCipher
from tests.e2e.test_ingestion import assert_each_session_counted_once, assert_rates_match
from tests.factories import raw_session
from tests.notifications.conftest import RECIPIENTS
from tests.support.databases import under_ci
from tests.support.postgres_cluster import PrivatePostgres, missing_reason, postgres_binaries
from tests.support.processes import wait_until
from tests.support.proxy import TcpProxy
from tests.support.smtp import SmtpServer


def many_sessions(count: int, tutors: int, seed: int) -> list[dict]:
    """Sessions over the last 12 weeks, each 1 to 23 hours into its day before now, so that no window edge
    (a whole number of days before the scoring moment) falls near one while two runs score minutes apart."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    return [
        raw_session(f"k{seed}-{i}", f"tutor-{rng.randrange(tutors)}",
                    now - dt.timedelta(days=rng.randrange(84), hours=rng.uniform(1, 23)),
                    *(("rescheduled", "tutor") if rng.random() < 0.15 else ("completed",)))
        for i in range(count)
    ]


def post_all(stack, records: list[dict], size: int) -> None:
    for start in range(0, len(records), size):
        status, body = stack.client.request("POST", "/api/sessions", records[start:start + size])
        assert status == 202, body


def test_a_consumer_killed_mid_rescore_scores_every_session_exactly_once(
        postgres_database, postgres_url, private_redis, make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0")
    records = many_sessions(10_000, tutors=30, seed=1)
    post_all(stack, records[:3000], 1000)
    claimed = wait_until(lambda: claimed_tutors(postgres_database), 60,
                         "the worker to claim waiting tutors for a coalesced rescore", interval=0.01)
    stack.worker.kill(signal.SIGKILL)
    orphaned = claimed_tutors(postgres_database)  # the dead worker's claims, frozen at its death
    assert orphaned, f"the claims {claimed} were finished before the kill landed; the test proves nothing"
    assert stack.inbox_counts().get("pending", 0) > 0, "the consumer finished the backlog before it was killed"
    logged_before = len(stack.worker.log())
    stack.restart_worker()
    post_all(stack, records[3000:], 1000)  # the replay goes on while the new consumer starts
    stack.wait_until_drained(len(records), timeout=180)  # lost tasks swept, lapsed claims taken over
    assert_each_session_counted_once(postgres_database, len(records))
    assert_rates_match(stack, records, sorted({r["tutor_id"] for r in records}))
    rescored_after = stack.worker.log()[logged_before:]
    assert all(f"event=tutor_rescored tutor_id={tutor_id} " in rescored_after for tutor_id in orphaned)


def claimed_tutors(database) -> list[str]:
    """Waiting tutors a worker has claimed and not finished (the killed one's, once it is dead)."""
    with database.connection_context():
        return [row.tutor_id for row in
                RescoreWaiting.select().where(RescoreWaiting.claimed_until > dt.datetime.now(dt.UTC))]


def test_with_redis_stopped_mid_replay_the_api_still_accepts_and_the_backlog_drains_when_it_returns(
        postgres_database, postgres_url, private_redis, make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0")
    records = many_sessions(1500, tutors=20, seed=2)
    post_all(stack, records[:900], 300)
    private_redis.kill(signal.SIGKILL)  # queued tasks die with it (no persistence): the sweeper queues them again
    assert stack.inbox_counts().get("pending", 0) > 0, "the worker drained the queue before Redis stopped"
    started = time.monotonic()
    post_all(stack, records[900:], 300)
    assert time.monotonic() - started < 10
    status, health = stack.client.request("GET", "/api/health")
    assert status == 200 and health["status"] == "degraded" and not health["queue"]["ok"]
    assert health["backlog"]["pending"] >= 600
    private_redis.start()
    wait_until(private_redis.ping, 10, "redis-server to come back")
    stack.wait_until_drained(len(records), timeout=90)
    assert_each_session_counted_once(postgres_database, len(records))
    assert_rates_match(stack, records, sorted({r["tutor_id"] for r in records}))


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of this test's own, which it may stop and start."""
    reason = missing_reason()
    if reason:
        if under_ci():
            pytest.fail("CI=true requires a private PostgreSQL cluster: " + reason)
        pytest.skip(reason)
    server = PrivatePostgres(postgres_binaries()).start()
    yield server
    server.remove()


def test_postgres_restarted_mid_replay_gets_503_with_retry_after_then_scores_as_a_clean_run(
        private_postgres, postgres_database, postgres_url, private_redis, make_stack, tmp_path):
    restarted_db = open_database(private_postgres.create_database("tqs_restarted"), max_connections=2)
    with restarted_db.bind_ctx(MODELS):
        migrate(restarted_db)
    queue = f"redis://127.0.0.1:{private_redis.port}"
    secret = {"TQS_SECRET_KEY": "fault-tests-secret-key-of-at-least-32-characters"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # the same sessions through a stack left alone
        clean_started = pool.submit(make_stack, postgres_database, postgres_url, f"{queue}/1",
                                    log_dir=tmp_path / "clean", extra_env=secret)
        restarted = make_stack(restarted_db, private_postgres.url("tqs_restarted"), f"{queue}/0",
                               log_dir=tmp_path / "restarted", extra_env=secret)
        clean = clean_started.result()
    records = many_sessions(800, tutors=20, seed=6)
    batches = [records[start:start + 100] for start in range(0, len(records), 100)]
    for batch in batches[:3]:
        assert clean.client.request("POST", "/api/sessions", batch)[0] == 202
        assert restarted.client.request("POST", "/api/sessions", batch)[0] == 202

    private_postgres.stop()  # -m fast: every client's connection is cut, as in a restart
    refused = restarted.client.exchange("POST", "/api/sessions", batches[3])
    assert refused.status == 503 and refused.body["error"]["title"] == "Database unavailable"
    assert int(refused.headers["Retry-After"]) > 0
    health = restarted.client.exchange("GET", "/api/health")
    assert health.status == 503 and health.body["status"] == "unavailable"
    private_postgres.start()

    refusals_after_restart = 0
    for batch in batches[3:]:  # a client that retries on 503 (sooner than Retry-After, to keep the test short)
        assert clean.client.request("POST", "/api/sessions", batch)[0] == 202

        def accepted(batch=batch) -> bool:
            nonlocal refusals_after_restart
            status = restarted.client.request("POST", "/api/sessions", batch)[0]
            refusals_after_restart += status == 503
            return status == 202
        wait_until(accepted, 30, "the API to accept again once PostgreSQL is back", interval=0.1)
    assert refusals_after_restart <= 2  # at most one stale pooled connection per gunicorn worker
    clean.wait_until_drained(len(records), timeout=90)
    with restarted_db.bind_ctx(MODELS):
        restarted.wait_until_drained(len(records), timeout=90)
        assert_each_session_counted_once(restarted_db, len(records))
    cipher = PersonalDataCipher([secret["TQS_SECRET_KEY"]])
    after_fault = stored_scores(restarted_db, cipher)
    release_connections(restarted_db)
    assert "OperationalError" in restarted.worker.log()  # the restart cut the worker off mid-replay
    clean_run = stored_scores(postgres_database, cipher)
    assert len(clean_run["tutors"]) == 20 and clean_run["score_snapshots"] and clean_run["risk_events"]
    for table, rows in clean_run.items():
        assert after_fault[table] == rows, table


SCORED = (Tutor, TutorDailyCount, TutorMetric, TutorScore, ScoreSnapshot, RiskEvent, RuleFailure)


def stored_scores(database, cipher: PersonalDataCipher) -> dict[str, list]:
    """Every row scoring derived, sealed values opened, without row ids and the moments the scoring ran."""
    tables = {}
    with database.connection_context():
        for model in SCORED:
            cursor = database.execute_sql(f"SELECT * FROM {model._meta.table_name}")
            columns = [column[0] for column in cursor.description]
            tables[model._meta.table_name] = sorted((
                tuple((column, cipher.open(value) if isinstance(value, str) else value)
                      for column, value in zip(columns, row, strict=True)
                      if column not in ("id", "as_of") and not column.endswith("_at"))
                for row in cursor.fetchall()), key=repr)
    return tables


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


def test_reports_held_while_the_smtp_server_is_down_go_out_once_each_when_it_is_back(
        postgres_database, postgres_url, private_redis, make_stack, tmp_path):
    smtp = SmtpServer(tmp_path).start()
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0", extra_env={
        "TQS_EMAIL_POLICY": "every-session", "TQS_EMAIL_URL": smtp.url(), "TQS_EMAIL_TO": ",".join(RECIPIENTS),
        "TQS_EMAIL_FROM": "Tutor Quality <tq@example.com>", "TQS_EMAIL_RETRY_SECONDS": "1"})
    records = many_sessions(12, tutors=3, seed=7)
    try:
        assert stack.client.request("POST", "/api/sessions", records[:4])[0] == 202
        # recorded as sent, not only received: a connection cut between the server taking a message and its
        # reply reaching us is resent (with the same Message-ID), which is SMTP's at-least-once, not this test
        wait_until(lambda: report_statuses(postgres_database) == {"sent": 4}, 30, "the first reports to be sent")
        smtp.handler.disconnect_all()  # the server goes away: its open connections are cut, new ones refused
        smtp.stop()
        for record in records[4:]:  # live single posts while it is down
            assert stack.client.request("POST", "/api/sessions", record)[0] == 202
        wait_until(lambda: "event=email_attempt_failed" in stack.worker.log(), 30, "a delivery attempt to fail")
        smtp.restart()
        wait_until(lambda: report_statuses(postgres_database) == {"sent": len(records)}, 60,
                   f"every report sent (now {report_statuses(postgres_database)})")
    finally:
        smtp.stop()
    pairs = Counter((r.message["Message-ID"], r.recipients[0]) for r in smtp.received)
    assert len(pairs) == len(records) * len(RECIPIENTS) and set(pairs.values()) == {1}  # none twice, none lost


def report_statuses(database) -> Counter:
    with database.connection_context():
        return Counter(status for (status,) in EmailReport.select(EmailReport.status).tuples())
