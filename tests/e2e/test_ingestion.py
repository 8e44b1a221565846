"""End to end over HTTP: gunicorn, a Huey consumer, and the database, as real processes."""

import concurrent.futures
import datetime as dt
import json
import random
import subprocess
from pathlib import Path

import pytest

from engine.models import Session, TutorDailyCount
from engine.validation import parse_datetime
from tests.factories import oracle_rate, raw_session
from tests.support.processes import tqs_argv

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


@pytest.fixture(params=["postgres+redis", "sqlite+sqlite-queue"])
def stack_of_each_kind(request, make_stack, tmp_path):
    """The production pairing, and the embedded default the demo runs on."""
    if request.param == "postgres+redis":
        redis = request.getfixturevalue("private_redis")
        return make_stack(request.getfixturevalue("postgres_database"), request.getfixturevalue("postgres_url"),
                          f"redis://127.0.0.1:{redis.port}/0")
    database, url = request.getfixturevalue("sqlite_database")
    return make_stack(database, url, f"sqlite:///{tmp_path / 'queue.db'}")


def test_sessions_posted_over_http_are_scored(stack_of_each_kind):
    stack = stack_of_each_kind
    for start in range(0, len(SAMPLE), 60):
        status, body = stack.client.request("POST", "/api/sessions", SAMPLE[start:start + 60])
        assert status == 202 and body["accepted"] == len(SAMPLE[start:start + 60])
    stack.wait_until_drained(len(SAMPLE))
    assert_rates_match(stack, SAMPLE, {r["tutor_id"] for r in SAMPLE})
    assert_each_session_counted_once(stack.database, len(SAMPLE))
    assert "event=session_stored" in stack.worker.log() and "event=tutor_rescored" in stack.worker.log()
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


def test_tqs_ingest_without_sync_queues_through_the_inbox_for_the_worker(sqlite_database, make_stack, tmp_path):
    database, url = sqlite_database
    stack = make_stack(database, url, f"sqlite:///{tmp_path / 'queue.db'}")
    sample_path = Path(__file__).parent.parent / "data" / "sample.json"
    result = subprocess.run(tqs_argv("ingest", str(sample_path)), env=stack.env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and f"queued {len(SAMPLE)} sessions" in result.stderr
    stack.wait_until_drained(len(SAMPLE))
    assert_each_session_counted_once(database, len(SAMPLE))
