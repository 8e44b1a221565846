"""End to end over HTTP: gunicorn, a Huey consumer, and the database, as real processes."""

import concurrent.futures
import datetime as dt
import json
import random
from pathlib import Path

from engine.models import Session, TutorDailyCount
from engine.validation import parse_datetime
from tests.factories import oracle_rate, raw_session

SAMPLE = json.loads((Path(__file__).parent.parent / "data" / "sample.json").read_text())


def assert_rates_match(stack, records, tutor_ids):
    for tutor_id in tutor_ids:
        status, tutor = stack.client.request("GET", f"/api/tutors/{tutor_id}")
        assert status == 200
        as_of = parse_datetime(tutor["updated_at"])
        for days in (7, 30, 90):
            sessions, moved, rate = oracle_rate(records, tutor_id, as_of, days)
            assert (tutor[f"sessions_{days}d"], tutor[f"tutor_reschedules_{days}d"]) == (sessions, moved), tutor_id
            assert tutor[f"reschedule_rate_{days}d"] == rate


def assert_each_session_counted_once(database, expected: int):
    with database.connection_context():
        assert Session.select().count() == expected
        assert sum(row.sessions for row in TutorDailyCount.select()) == expected


def test_sessions_posted_over_http_are_scored_on_redis_and_postgres(postgres_database, postgres_url, private_redis,
                                                                    make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0")
    status, body = stack.client.request("POST", "/api/sessions", SAMPLE)
    assert status == 202 and body["accepted"] == len(SAMPLE)
    stack.wait_until_drained(len(SAMPLE))
    assert_rates_match(stack, SAMPLE, {r["tutor_id"] for r in SAMPLE})
    assert_each_session_counted_once(postgres_database, len(SAMPLE))
    assert "event=session_scored" in stack.worker.log()


def test_the_embedded_default_runs_the_same_path_on_sqlite(sqlite_database, make_stack, tmp_path):
    database, url = sqlite_database
    stack = make_stack(database, url, f"sqlite:///{tmp_path / 'queue.db'}")
    for start in range(0, len(SAMPLE), 50):
        assert stack.client.request("POST", "/api/sessions", SAMPLE[start:start + 50])[0] == 202
    stack.wait_until_drained(len(SAMPLE))
    assert_rates_match(stack, SAMPLE, {r["tutor_id"] for r in SAMPLE})
    status, health = stack.client.request("GET", "/api/health")
    assert status == 200 and health["backlog"]["pending"] == 0


def test_four_worker_processes_keep_counts_exact(postgres_database, postgres_url, private_redis, make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0",
                       worker_processes=4)
    rng = random.Random(11)
    now = dt.datetime.now(dt.UTC)
    records = [
        raw_session(f"c{i}", f"tutor-{i % 5}", now - dt.timedelta(hours=rng.uniform(1, 24 * 95)),
                    *(("rescheduled", rng.choice(["tutor", "tutor", "student"])) if rng.random() < 0.2
                      else ("completed",)))
        for i in range(2000)
    ]
    batches = [records[i:i + 25] for i in range(0, len(records), 25)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda batch: stack.client.request("POST", "/api/sessions", batch)[0], batches))
    assert set(statuses) == {202}
    stack.wait_until_drained(len(records))
    assert_each_session_counted_once(postgres_database, len(records))
    assert_rates_match(stack, records, {f"tutor-{i}" for i in range(5)})
