"""The processing task's retries, final failure and ``retry-failed``, driven step by step through Huey."""

import datetime as dt
import logging

import pytest
from huey import MemoryHuey

from engine import inbox, queries
from engine.hookspecs import hookimpl
from engine.models import InboxItem
from engine.registry import get_plugin_manager
from engine.rulekit import RuleInfo
from engine.services import Services
from engine.tasks import RETRIES, register_tasks
from engine.validation import validate_session
from tests.conftest import NOW
from tests.factories import raw_session


class BreaksOnOneTutor:
    """A rule that fails for tutor t-bad, as a bug in a plugin would."""

    @hookimpl
    def describe_rule(self):
        return RuleInfo("fragile", "0.0.1", "fails for t-bad", ())

    @hookimpl
    def assess_tutor(self, history):
        if history.tutor_id == "t-bad":
            raise RuntimeError("plugin bug")


@pytest.fixture
def queued(database, settings):
    """Two sessions in the inbox, one of a tutor the fragile rule cannot score, and a non-immediate queue."""
    pm = get_plugin_manager(settings, extra_plugins=[BreaksOnOneTutor()])
    tasks = register_tasks(MemoryHuey("test", immediate=False, results=False), Services(settings, database, pm),
                           clock=lambda: NOW)
    items = [raw_session("good", "t-good", NOW - dt.timedelta(days=1)),
             raw_session("bad", "t-bad", NOW - dt.timedelta(days=1))]
    ids = inbox.accept(database, [validate_session(i) for i in items], NOW)
    assert tasks.enqueue_inbox(ids)
    return tasks, ids


def run_next(huey):
    """Execute the next queued task, or else the next scheduled retry regardless of its eta."""
    task = huey.dequeue()
    if task is None:
        scheduled = huey.scheduled()
        assert scheduled, "nothing queued or scheduled"
        task = scheduled[0]
        task.eta = None  # run the retry now rather than waiting out its delay
        huey.storage.flush_schedule()
    return task, huey.execute(task)


def statuses(database):
    with database.connection_context():
        return {row.session_id: (row.status, row.attempts) for row in InboxItem.select()}


def test_failures_retry_with_backoff_then_park_as_failed_and_retry_failed_requeues(queued, database, settings,
                                                                                     caplog):
    tasks, ids = queued
    caplog.set_level(logging.INFO, logger="tutor_quality.worker")
    delays = []
    for _ in range(RETRIES):
        task, _ = run_next(tasks.huey)
        delays.append(tasks.huey.scheduled()[0].retry_delay if tasks.huey.scheduled() else None)
    assert statuses(database)["good"][0] == "processed"  # the healthy tutor's transaction committed
    assert delays == [4, 8, 16]  # the delay after each attempt doubles: 2 s, then 4 s, then 8 s were used
    run_next(tasks.huey)  # the last retry fails for good
    assert statuses(database)["bad"] == ("failed", RETRIES + 1)
    assert _backlog(database).failed == 1
    lines = [r.getMessage() for r in caplog.records]
    assert sum("event=session_attempt_failed session_id=bad tutor_id=t-bad" in line for line in lines) == RETRIES
    assert sum("event=session_failed session_id=bad tutor_id=t-bad" in line for line in lines) == 1
    assert any("event=session_scored session_id=good tutor_id=t-good" in line for line in lines)

    fixed = register_tasks(MemoryHuey("fixed", immediate=False, results=False),
                           Services(settings, database, get_plugin_manager(settings)), clock=lambda: NOW)
    assert inbox.reset_failed(database) == [ids[1]]
    fixed.enqueue_inbox([ids[1]])
    run_next(fixed.huey)
    assert statuses(database)["bad"][0] == "processed"
    assert _backlog(database).failed == 0


def test_an_older_delivery_of_a_session_is_superseded_by_the_newer(database, settings, pm):
    tasks = register_tasks(MemoryHuey("test", immediate=False, results=False), Services(settings, database, pm),
                           clock=lambda: NOW)
    older = raw_session("s1", "t1", NOW - dt.timedelta(days=1))
    newer = raw_session("s1", "t1", NOW - dt.timedelta(days=1), "rescheduled", "tutor")
    first = inbox.accept(database, [validate_session(older)], NOW)
    second = inbox.accept(database, [validate_session(newer)], NOW)
    tasks.enqueue_inbox(second)
    run_next(tasks.huey)
    tasks.enqueue_inbox(first)  # the older one arrives late, e.g. swept after a crash
    run_next(tasks.huey)
    with database.connection_context():
        assert [row.status for row in InboxItem.select().order_by(InboxItem.id)] == ["superseded", "processed"]
    from engine.queries import get_tutor_record
    from engine.registry import metric_names

    with database.connection_context():
        assert get_tutor_record("t1", metric_names(pm))["tutor_reschedules_7d"] == 1


def _backlog(database):
    with database.connection_context():
        return queries.backlog(NOW)
