"""The Ruby client (clients/ruby) against a live stack, run with Debian's ruby as the Rails app would run it.

One stack (gunicorn, a Huey consumer, Postgres and a private Redis) serves every test here, with a low
ingest rate limit; each test posts with its own API key, so each starts with a fresh rate window.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from engine.db import bind_database, open_database, release_connections
from engine.migrations import migrate
from engine.models import Session, TutorDailyCount
from tests.e2e.test_ingestion import assert_rates_match
from tests.factories import raw_session
from tests.support.databases import empty_database, under_ci
from tests.support.processes import RedisProcess, free_port, redis_server_available, wait_until
from tests.support.stack import API_KEY, Stack

CLIENT_DIR = Path(__file__).parents[2] / "clients" / "ruby"
SCRIPT = CLIENT_DIR / "post_sessions.rb"
BAD_REQUEST_KEY = "ruby-bad-request-key"  # logged as env-2
BURST_KEY = "ruby-burst-key"  # logged as env-3
RATE_LIMIT = (4, 2)  # requests per seconds, per key


@pytest.fixture(scope="module")
def ruby() -> str:
    path = shutil.which("ruby")
    if path is None:
        if under_ci():
            pytest.fail("CI=true requires ruby: .ci/run installs Debian's ruby when it is missing")
        pytest.skip("ruby is not installed here (apt-get install ruby)")
    return path


@pytest.fixture(scope="module")
def ruby_stack(ruby, postgres_url, tmp_path_factory):
    """The production pairing, Postgres and Redis, shared by this module's tests."""
    if not redis_server_available():
        if under_ci():
            pytest.fail("CI=true requires Redis: redis-server is not installed here")
        pytest.skip("redis-server is not installed here")
    folder = tmp_path_factory.mktemp("ruby-client")
    redis = RedisProcess(free_port(), folder).start()
    database = bind_database(open_database(postgres_url, max_connections=4))
    migrate(database)
    empty_database(database)
    stack = Stack(postgres_url, f"redis://127.0.0.1:{redis.port}/0", folder, database, extra_env={
        "TQS_API_KEYS": f"{API_KEY},{BAD_REQUEST_KEY},{BURST_KEY}",
        "TQS_INGEST_RATE_LIMIT": "{}/{}".format(*RATE_LIMIT)})
    try:
        wait_until(redis.ping, 10, "redis-server to answer PING")
        yield stack.start()
    finally:
        stack.stop()
        redis.kill()
        empty_database(database)
        release_connections(database)


def post_with_ruby(ruby: str, stack: Stack, records: list, key: str, tmp_path: Path, *args: str):
    """Run post_sessions.rb on ``records``: (exit status, its one-line JSON summary, seconds it took)."""
    path = tmp_path / "sessions.json"
    path.write_text(json.dumps(records))
    started = time.monotonic()
    result = subprocess.run([ruby, str(SCRIPT), "--url", stack.client.base_url, "--key", key, *args, str(path)],
                            capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    lines = result.stdout.strip().splitlines()
    assert lines, f"no summary printed; stderr: {result.stderr}"
    return result.returncode, json.loads(lines[-1]), elapsed


def stored_counts(stack: Stack) -> tuple[int, int, int]:
    """(inbox rows, sessions stored, sessions counted in the daily counts)."""
    with stack.database.connection_context():
        counted = sum(row.sessions for row in TutorDailyCount.select(TutorDailyCount.sessions))
        return sum(stack.inbox_counts().values()), Session.select().count(), counted


def api_log_lines(stack: Stack, *needles: str) -> list[str]:
    return [line for line in stack.api.log().splitlines() if all(needle in line for needle in needles)]


def realistic_sessions(prefix: str, count: int, tutors: int, seed: int) -> list[dict]:
    """Sessions as the Rails glue maps them: every field, a fifth rescheduled, some no-shows, first sessions."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    records = []
    for i in range(count):
        when = now - dt.timedelta(hours=rng.uniform(2, 24 * 80))
        roll = rng.random()
        outcome = (("rescheduled", rng.choice(["tutor", "tutor", "student"])) if roll < 0.2
                   else ("no_show",) if roll < 0.26 else ("completed",))
        records.append(raw_session(
            f"{prefix}-{i}", f"{prefix}-tutor-{i % tutors}", when, *outcome,
            tutor_name=f"Tutor {i % tutors}", student_name=f"Student {i}", subject="Algebra",
            duration_minutes=60, is_first_session=i % 7 == 0))
    return records


def test_sessions_posted_by_the_ruby_client_are_all_stored_and_scored(ruby, ruby_stack, tmp_path):
    records = realistic_sessions("rb", 300, tutors=12, seed=5)
    before = stored_counts(ruby_stack)
    status, summary, _ = post_with_ruby(ruby, ruby_stack, records, API_KEY, tmp_path, "--batch-size", "100")
    assert status == 0, summary
    assert (summary["sessions"], summary["accepted"], summary["batches"]) == (300, 300, 3)
    assert summary["statuses"] == {"202": 3} and summary["retries"] == 0
    ruby_stack.wait_until_drained(before[0] + 300, timeout=60)
    assert stored_counts(ruby_stack) == (before[0] + 300, before[1] + 300, before[2] + 300)
    assert_rates_match(ruby_stack, records, {record["tutor_id"] for record in records})


def test_a_bad_batch_is_reported_with_the_api_reasons_and_never_retried(ruby, ruby_stack, tmp_path):
    good = raw_session("rb-bad-0", "rb-bad-tutor", dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    bad = {**raw_session("rb-bad-1", "rb-bad-tutor", dt.datetime.now(dt.UTC)), "status": "finished"}
    del bad["scheduled_time"]
    before = stored_counts(ruby_stack)
    status, summary, _ = post_with_ruby(ruby, ruby_stack, [good, bad], BAD_REQUEST_KEY, tmp_path)
    assert status == 1 and not summary["ok"]
    assert summary["error"]["class"] == "TutorQuality::InvalidSessions" and summary["error"]["status"] == 400
    assert {(e["index"], e["field"]) for e in summary["error"]["errors"]} == {(1, "scheduled_time"), (1, "status")}
    assert "[1] status: must be one of" in summary["error"]["message"]
    assert (summary["requests"], summary["retries"], summary["statuses"]) == (1, 0, {"400": 1})
    assert len(api_log_lines(ruby_stack, "event=http_request", "path=/api/sessions", "status=400", "key=env-2")) == 1
    assert stored_counts(ruby_stack)[0] == before[0]  # nothing of the batch went into the inbox

    status, summary, _ = post_with_ruby(ruby, ruby_stack, [good], "not-a-key", tmp_path)
    assert status == 1 and summary["error"]["class"] == "TutorQuality::AuthenticationError"
    assert (summary["requests"], summary["statuses"]) == (1, {"401": 1})


def test_over_the_rate_limit_the_client_waits_what_retry_after_says_then_is_accepted(ruby, ruby_stack, tmp_path):
    records = realistic_sessions("rb-burst", 2 * RATE_LIMIT[0] + 1, tutors=3, seed=9)
    before = stored_counts(ruby_stack)
    status, summary, elapsed = post_with_ruby(ruby, ruby_stack, records, BURST_KEY, tmp_path,
                                              "--batch-size", "1", "--max-attempts", "4", "--max-delay", "10")
    assert status == 0, summary
    assert summary["accepted"] == len(records) and summary["statuses"]["202"] == len(records)
    refused = summary["statuses"].get("429", 0)
    assert refused >= 1  # 9 requests at once, 4 per 2-second window: a burst spans two windows at most
    assert summary["requests"] == len(records) + refused and summary["retries"] == refused
    for wait in summary["waits"]:
        assert wait["status"] == "429" and int(wait["retry_after"]) >= 1
        assert wait["seconds"] == float(wait["retry_after"])  # the server's word, not the client's backoff
    assert elapsed >= sum(wait["seconds"] for wait in summary["waits"])
    assert len(api_log_lines(ruby_stack, "event=rate_limited", "key=env-3")) == refused
    ruby_stack.wait_until_drained(before[0] + len(records), timeout=60)
    assert stored_counts(ruby_stack)[1] == before[1] + len(records)
