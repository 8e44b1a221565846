"""The worker's sweeper: it queues inbox rows nobody queued or a dead worker lost, and a rescore for tutors
left waiting, but leaves rows alone while they are probably just waiting in a busy queue."""

import datetime as dt
import threading

import pytest
from huey import MemoryHuey

from engine import inbox, queries
from engine.models import InboxItem
from engine.services import Services
from engine.storing import store_sessions
from engine.tasks import register_tasks
from engine.validation import validate_session
from engine.worker import Sweeper
from tests.conftest import NOW
from tests.factories import raw_session, session

SWEEP_AFTER = dt.timedelta(seconds=180)


@pytest.fixture
def sweeper_at(database, settings, rules, services):
    """A sweeper over a queue that nothing consumes, whose clock is set per test (``services`` binds the cipher
    of personal data before anything is accepted, as every process does at start)."""
    def make(moment: dt.datetime) -> Sweeper:
        services = Services(settings, database, rules, clock=lambda: moment)
        tasks = register_tasks(MemoryHuey("sweep", immediate=False, results=False), services)
        return Sweeper(tasks, settings, threading.Event())
    return make


def queued_names(sweeper: Sweeper) -> list[str]:
    return [task.name for task in iter(sweeper.tasks.huey.dequeue, None)]


def accept(database, session_id: str, enqueued: bool) -> int:
    [item_id] = inbox.accept(database, [validate_session(raw_session(session_id, "t1", NOW - dt.timedelta(days=1)))],
                             NOW)
    if not enqueued:
        inbox.mark_enqueued(database, [item_id], None)  # the enqueue failed (Redis was down)
    return item_id


def test_a_row_never_queued_is_queued_after_a_short_grace(database, sweeper_at):
    accept(database, "never-queued", enqueued=False)
    assert sweeper_at(NOW + dt.timedelta(seconds=2)).sweep_once() == 0  # the API may still be enqueueing it
    later = sweeper_at(NOW + inbox.NEVER_ENQUEUED_GRACE + dt.timedelta(seconds=1))
    assert later.sweep_once() == 1
    assert queued_names(later) == ["store_inbox"]
    with database.connection_context():
        assert InboxItem.get().enqueued_at == later.tasks.services.clock()  # stamped, so not swept again at once


def test_a_row_a_dead_worker_lost_is_queued_again_only_once_the_queue_is_idle(database, sweeper_at):
    accept(database, "lost", enqueued=True)
    late = NOW + SWEEP_AFTER + dt.timedelta(seconds=1)
    busy = sweeper_at(late)
    busy.tasks.rescore_waiting()  # something is still queued: the row is probably just waiting its turn
    assert busy.sweep_once() == 0
    idle = sweeper_at(late)
    assert idle.sweep_once() == 1 and queued_names(idle) == ["store_inbox"]


def test_tutors_left_waiting_get_a_rescore_queued_and_then_scored(database, sweeper_at, services):
    with database.connection_context():
        store_sessions(services, [session("s1", "t1", NOW - dt.timedelta(days=1))])  # a worker died right here
    sweeper = sweeper_at(NOW + dt.timedelta(seconds=1))
    sweeper.sweep_once()
    [task] = list(iter(sweeper.tasks.huey.dequeue, None))
    assert task.name == "rescore_waiting"
    sweeper.tasks.huey.execute(task)
    with database.connection_context():
        assert queries.backlog(NOW).tutors_waiting == 0
        assert queries.get_tutor_record("t1", services.metric_names)["sessions_7d"] == 1
