"""The queue tasks, driven step by step through Huey: store retries and final failure, ``retry-failed``,
a rule that fails for one tutor, a payload that no longer validates, superseded deliveries."""

import datetime as dt
import logging

from huey import MemoryHuey

from engine import inbox, queries
from engine.db import is_postgres
from engine.models import InboxItem, RescoreWaiting
from engine.plugin import Assessment, RuleInfo, hookimpl
from engine.registry import load_rules
from engine.rescoring import rescore_all
from engine.services import Services
from engine.tasks import RETRIES, register_tasks
from engine.validation import validate_session
from tests.conftest import NOW
from tests.factories import raw_session


class BreaksOnOneTutor:
    """A rule that flags everyone, and fails for tutor t-bad while ``broken``, as a bug in a plugin would."""

    broken = False

    @hookimpl
    def describe_rule(self):
        return RuleInfo("fragile", "0.0.1", "fails for t-bad", ())

    @hookimpl
    def assess_tutor(self, history):
        if self.broken and history.tutor_id == "t-bad":
            raise RuntimeError("plugin bug")
        return Assessment({}, flagged=True, severity="low", risk_score=10.0)


def make_tasks(services):
    return register_tasks(MemoryHuey("test", immediate=False, results=False), services)


def accept(database, *raws):
    return inbox.accept(database, [validate_session(raw) for raw in raws], NOW)


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


def backlog(database, now=NOW):
    with database.connection_context():
        return queries.backlog(now)


def fail_inserts_for(database, tutor_id):
    """A real database error on storing ``tutor_id``'s sessions, as a full disk or a bad migration would give."""
    with database.connection_context():
        if is_postgres(database):
            database.execute_sql(
                "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql")
            database.execute_sql(f"CREATE TRIGGER refuse BEFORE INSERT ON sessions FOR EACH ROW "
                                 f"WHEN (NEW.tutor_id = '{tutor_id}') EXECUTE FUNCTION refuse()")
        else:
            database.execute_sql(f"CREATE TRIGGER refuse BEFORE INSERT ON sessions WHEN NEW.tutor_id = '{tutor_id}' "
                                 "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")


def stop_failing(database):
    with database.connection_context():
        database.execute_sql("DROP TRIGGER refuse ON sessions" if is_postgres(database) else "DROP TRIGGER refuse")


def test_a_store_that_fails_retries_with_backoff_parks_as_failed_and_retry_failed_requeues(
        database, services, caplog):
    tasks = make_tasks(services)
    caplog.set_level(logging.INFO, logger="tutor_quality.worker")
    fail_inserts_for(database, "t-bad")
    ids = accept(database, raw_session("good", "t-good", NOW - dt.timedelta(days=1)),
                 raw_session("bad", "t-bad", NOW - dt.timedelta(days=1)))
    assert tasks.enqueue_inbox(ids)
    delays = []
    for _ in range(RETRIES):
        run_next(tasks.huey)
        delays.append(tasks.huey.scheduled()[0].retry_delay if tasks.huey.scheduled() else None)
    assert delays == [4, 8, 16]  # the delay after each attempt doubles: 2 s, then 4 s, then 8 s were used
    assert statuses(database) == {"good": ("pending", RETRIES), "bad": ("pending", RETRIES)}  # one transaction
    run_next(tasks.huey)  # the last retry fails for good
    assert statuses(database) == {"good": ("failed", RETRIES + 1), "bad": ("failed", RETRIES + 1)}
    assert backlog(database).failed == 2
    lines = [r.getMessage() for r in caplog.records]
    assert sum("event=session_attempt_failed session_id=bad tutor_id=t-bad" in line for line in lines) == RETRIES
    assert sum("event=session_failed session_id=bad tutor_id=t-bad" in line for line in lines) == 1

    stop_failing(database)
    assert inbox.reset_failed(database, NOW) == ids
    assert tasks.enqueue_inbox(ids)
    run_next(tasks.huey)
    assert {status for status, _ in statuses(database).values()} == {"processed"}
    assert backlog(database).failed == 0 and backlog(database).tutors_waiting == 0


def test_a_rule_failing_for_one_tutor_is_skipped_there_and_keeps_its_previous_result(database, settings, caplog):
    BreaksOnOneTutor.broken = False
    fragile = Services(settings, database, load_rules(settings, extra_plugins=[BreaksOnOneTutor()]),
                       clock=lambda: NOW)
    tasks = make_tasks(fragile)
    tasks.enqueue_inbox(accept(database, raw_session("first", "t-bad", NOW - dt.timedelta(days=2))))
    run_next(tasks.huey)
    with database.connection_context():
        before = {f["rule"]: f for f in queries.get_tutor_detail("t-bad", fragile.metric_names)["flags"]}
    assert before["fragile"]["flagged"] and not before["fragile"]["stale"]

    BreaksOnOneTutor.broken = True  # a bug ships; the next session of t-bad makes the rule raise
    caplog.set_level(logging.INFO)
    tasks.enqueue_inbox(accept(database, raw_session("good", "t-good", NOW - dt.timedelta(days=1)),
                               raw_session("bad", "t-bad", NOW - dt.timedelta(days=1))))
    run_next(tasks.huey)
    assert statuses(database) == {"first": ("processed", 0), "good": ("processed", 0), "bad": ("processed", 0)}
    assert backlog(database).tutors_waiting == 0  # the other rules scored t-bad: nothing is left waiting
    with database.connection_context():
        detail = queries.get_tutor_detail("t-bad", fragile.metric_names)
        flags = {f["rule"]: f for f in detail["flags"]}
        assert detail["sessions_7d"] == 2  # the other rules and the engine's counts moved on
        assert flags["fragile"]["stale"] and "plugin bug" in flags["fragile"]["error"]
        assert flags["fragile"]["flagged"] and flags["fragile"]["as_of"] == before["fragile"]["as_of"]
        assert detail["flagged"]  # the kept flag still counts
        assert queries.rule_failures()["fragile"]["tutors"] == 1
        assert not {f["rule"]: f for f in queries.get_tutor_detail("t-good", fragile.metric_names)["flags"]
                    }["fragile"]["stale"]
    assert "event=rule_failed rule=fragile tutor_id=t-bad" in caplog.text

    BreaksOnOneTutor.broken = False  # fixed: the next rescore scores t-bad again and forgets the failure
    rescore_all(fragile)
    with database.connection_context():
        flags = {f["rule"]: f for f in queries.get_tutor_detail("t-bad", fragile.metric_names)["flags"]}
        assert not flags["fragile"]["stale"] and queries.rule_failures() == {}


def test_a_payload_that_no_longer_validates_is_parked_and_the_rest_stored(database, services):
    tasks = make_tasks(services)
    ids = accept(database, raw_session("good", "t1", NOW - dt.timedelta(days=1)),
                 raw_session("edited", "t1", NOW - dt.timedelta(days=1)))
    with database.connection_context():
        broken = InboxItem.get(InboxItem.session_id == "edited")
        broken.payload = {**broken.payload, "status": "vanished"}
        broken.save()
    tasks.enqueue_inbox(ids)
    run_next(tasks.huey)
    with database.connection_context():
        rows = {row.session_id: row for row in InboxItem.select()}
    assert rows["good"].status == "processed"
    assert rows["edited"].status == "failed" and "status" in rows["edited"].last_error


def test_an_older_delivery_of_a_session_is_superseded_by_the_newer(database, services):
    tasks = make_tasks(services)
    older = raw_session("s1", "t1", NOW - dt.timedelta(days=1))
    newer = raw_session("s1", "t1", NOW - dt.timedelta(days=1), "rescheduled", "tutor")
    first = accept(database, older)
    tasks.enqueue_inbox(accept(database, newer))
    run_next(tasks.huey)
    tasks.enqueue_inbox(first)  # the older one arrives late, e.g. swept after a crash
    run_next(tasks.huey)
    with database.connection_context():
        assert [row.status for row in InboxItem.select().order_by(InboxItem.id)] == ["superseded", "processed"]
        assert queries.get_tutor_record("t1", services.metric_names)["tutor_reschedules_7d"] == 1


def test_with_batches_queued_only_tutors_that_waited_their_delay_are_rescored(database, services, settings):
    """Rescoring at once when the queue is idle; with batches queued, only tutors that waited long enough,
    so a tutor whose sessions come in many batches is rescored once for all of them."""
    tasks = make_tasks(services)
    tasks.enqueue_inbox(accept(database, raw_session("s1", "t1", NOW - dt.timedelta(days=1))))
    run_next(tasks.huey)  # nothing else queued: t1 is rescored at once
    assert backlog(database).tutors_waiting == 0

    tasks.enqueue_inbox(accept(database, raw_session("s2", "t2", NOW - dt.timedelta(days=1))))
    tasks.enqueue_inbox(accept(database, raw_session("s3", "t3", NOW - dt.timedelta(days=1))))
    run_next(tasks.huey)  # another batch is queued: t2 waits
    with database.connection_context():
        assert [row.tutor_id for row in RescoreWaiting.select()] == ["t2"]

    later = make_tasks(services.at(NOW + dt.timedelta(seconds=settings.rescore_delay_seconds + 0.5)))
    later.huey.enqueue(tasks.huey.dequeue())  # the batch of t3, with one more queued behind it
    later.enqueue_inbox(accept(database, raw_session("s4", "t4", NOW - dt.timedelta(days=1))))
    run_next(later.huey)  # t2 has waited its delay: rescored; t3 was just stored: waits
    with database.connection_context():
        assert [row.tutor_id for row in RescoreWaiting.select()] == ["t3"]
    run_next(later.huey)  # the queue is idle after this batch: everyone is rescored
    assert backlog(database).tutors_waiting == 0


def test_queued_email_never_makes_scoring_wait(database, services):
    """Scoring tasks run ahead of queued reports, and a store rescores at once when only email is queued."""
    tasks = make_tasks(services)
    for report_id in range(5):
        tasks.emails.send_report(report_id)
    tasks.enqueue_inbox(accept(database, raw_session("s1", "t1", NOW - dt.timedelta(days=1))))
    assert [task.name for task in tasks.huey.pending()] == ["store_inbox"] + ["send_report"] * 5
    run_next(tasks.huey)
    assert backlog(database).tutors_waiting == 0  # not delayed: only email was queued
