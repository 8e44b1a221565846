"""Coalescing: while a backfill is stored, each tutor is rescored about once, not once per batch, and ends
with the scores of a clean rebuild; never later than the most; a post on an idle queue is rescored at once."""

import dataclasses
import datetime as dt
import logging

from huey import MemoryHuey

from engine import inbox
from engine.models import RescoreWaiting
from engine.rescoring import BACKFILL_SESSIONS, coalescing_delay, rescore_all
from engine.sql import Sql, to_db_time
from engine.tasks import register_tasks
from engine.validation import validate_session
from tests.conftest import NOW
from tests.engine.state import derived_state, series_through
from tests.factories import raw_session

TUTORS = ("t1", "t2", "t3")
BATCHES = 30
TASK_SECONDS = 1.0  # how long each stored batch takes, on the clock the tasks see
SESSIONS_BEHIND = BACKFILL_SESSIONS  # still to be stored after these batches


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def rescores_by_tutor(caplog) -> dict[str, int]:
    counts = dict.fromkeys(TUTORS, 0)
    for record in caplog.records:
        message = record.getMessage()
        if "event=tutor_rescored" in message:
            tutor = next(part.split("=", 1)[1] for part in message.split() if part.startswith("tutor_id="))
            counts[tutor] += 1
    return counts


def backfill_batch(index: int) -> list[dict]:
    """Batch ``index`` of a backfill in time order: two sessions of each tutor, 60 days back to today."""
    day = NOW - dt.timedelta(days=60) + dt.timedelta(days=index * 60 / BATCHES)
    return [raw_session(f"s{index}-{tutor}-{n}", tutor, day + dt.timedelta(hours=n),
                        "rescheduled" if (index + n) % 4 == 0 else "completed")
            for tutor in TUTORS for n in range(2)]


def accepted_behind(database, count: int) -> None:
    """``count`` more sessions of other tutors accepted after those queued: the rest of the backfill."""
    sql = Sql(database)
    with database.connection_context():
        sql.run("INSERT INTO inbox (session_id, tutor_id, payload, status, attempts, received_at) "
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {p}) "
                "SELECT 'behind-' || i, 'other', '{}', 'pending', 0, {p} FROM n", (count, to_db_time(NOW)))


def test_tutors_wait_the_most_while_a_backfill_is_stored_else_the_least():
    def delay(sessions: int) -> float:
        return coalescing_delay(sessions, 0.5, 60).total_seconds()

    assert delay(0) == delay(40) == delay(BACKFILL_SESSIONS - 1) == 0.5  # live posts queued: the least
    assert delay(BACKFILL_SESSIONS) == 60


def without_email(services, clock=None, **settings):
    """The services with no reports queued after each rescore (they are not what is measured here)."""
    changed = dataclasses.replace(services.settings, email_policy="off", **settings)
    return dataclasses.replace(services, settings=changed, clock=clock or services.clock)


def waiting(database) -> list[str]:
    with database.connection_context():
        return sorted(row.tutor_id for row in RescoreWaiting.select())


def test_a_queued_backfill_rescores_each_tutor_about_once_with_the_scores_of_a_rebuild(
        database, services, caplog):
    clock = Clock(NOW)
    tasks = register_tasks(MemoryHuey("test", immediate=False, results=False), without_email(services, clock))
    for index in range(BATCHES):  # a backfill posted faster than it is stored: every batch queued first
        ids = inbox.accept(database, [validate_session(raw) for raw in backfill_batch(index)], NOW)
        tasks.enqueue_inbox(ids)
    accepted_behind(database, SESSIONS_BEHIND)  # and more of it still to come
    caplog.set_level(logging.INFO, logger="tutor_quality.worker")
    while (task := tasks.huey.dequeue()) is not None:
        tasks.huey.execute(task)
        clock.now += dt.timedelta(seconds=TASK_SECONDS)

    rescores = rescores_by_tutor(caplog)
    assert all(1 <= count <= 2 for count in rescores.values()), rescores  # 30 batches touched each tutor
    assert waiting(database) == []  # the last batch found the queue idle: everyone rescored
    through = series_through(database)
    coalesced = derived_state(database, through)
    rescore_all(services, rebuild=True)  # each tutor as of its last rescore (its time only moves forward)
    assert derived_state(database, through) == coalesced


def test_on_an_idle_queue_each_batch_is_rescored_by_its_own_task(database, services, caplog):
    tasks = register_tasks(MemoryHuey("test", immediate=False, results=False), without_email(services))
    caplog.set_level(logging.INFO, logger="tutor_quality.worker")
    for index in range(3):  # live posts, each stored before the next arrives
        ids = inbox.accept(database, [validate_session(raw) for raw in backfill_batch(BATCHES - 3 + index)], NOW)
        tasks.enqueue_inbox(ids)
        tasks.huey.execute(tasks.huey.dequeue())
        assert waiting(database) == []
    assert rescores_by_tutor(caplog) == dict.fromkeys(TUTORS, 3)


def test_however_long_the_backlog_a_touched_tutor_waits_at_most_the_most(database, services):
    clock = Clock(NOW)
    tasks = register_tasks(MemoryHuey("test", immediate=False, results=False),
                           without_email(services, clock, rescore_max_delay_seconds=10))
    for index in range(4):
        raw = raw_session(f"live-{index}", f"t{index}", NOW - dt.timedelta(hours=2))
        tasks.enqueue_inbox(inbox.accept(database, [validate_session(raw)], NOW))
    accepted_behind(database, SESSIONS_BEHIND)  # a backfill still to come
    for seconds in (0, 9.9, 10):
        clock.now = NOW + dt.timedelta(seconds=seconds)
        tasks.huey.execute(tasks.huey.dequeue())
    assert waiting(database) == ["t1", "t2"]  # t0 waited its 10 s and was rescored; the others wait on
    tasks.huey.execute(tasks.huey.dequeue())
    assert waiting(database) == []  # the queue is idle after the last task: at once
