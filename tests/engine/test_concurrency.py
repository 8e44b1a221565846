"""Several workers storing and rescoring one tutor at once on PostgreSQL: locks keep counts exact."""

import concurrent.futures
import datetime as dt
import random
import threading

import pytest

from engine import inbox
from engine.ingest import ingest
from engine.models import InboxItem, RescoreWaiting, Session, TutorDailyCount, TutorMetric
from engine.rescoring import rescore_all, rescore_waiting
from engine.services import Services
from engine.storing import SESSION_LOCKS
from engine.validation import validate_session
from tests.conftest import NOW
from tests.engine.state import derived_state, series_through
from tests.factories import oracle_rate, raw_session
from tests.support.processes import wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def services(postgres_database, rules, settings) -> Services:
    return Services(settings, postgres_database, rules, clock=lambda: NOW)


def test_concurrent_workers_on_one_tutor_keep_counts_exact(postgres_database, services):
    rng = random.Random(7)
    records = [
        raw_session(f"s{i}", "t1", NOW - dt.timedelta(days=rng.uniform(0, 95)),
                    *(("rescheduled", "tutor") if rng.random() < 0.3 else ("completed",)))
        for i in range(160)
    ]
    records += records[:40]  # some sessions are delivered twice, possibly at the same time
    rng.shuffle(records)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:  # each stores, then rescores what waits
        list(pool.map(lambda raw: ingest(services, [raw]), records))

    with postgres_database.connection_context():
        assert RescoreWaiting.select().count() == 0
        stored = {m.name: m.value for m in TutorMetric.select().where(TutorMetric.tutor == "t1")}
    for days in (7, 30, 90):
        sessions, moved, rate = oracle_rate(records, "t1", NOW, days)
        assert (stored[f"sessions_{days}d"], stored[f"tutor_reschedules_{days}d"]) == (sessions, moved)
        assert stored[f"reschedule_rate_{days}d"] == rate
    through = series_through(postgres_database)
    concurrent_state = derived_state(postgres_database, through)
    rescore_all(services, rebuild=True)
    assert derived_state(postgres_database, through) == concurrent_state



def test_one_new_session_posted_under_two_tutors_at_once_is_counted_once(postgres_database, services):
    records = [raw_session(f"s{i}", tutor, NOW - dt.timedelta(days=1)) for i in range(40) for tutor in ("ta", "tb")]
    random.Random(3).shuffle(records)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda raw: ingest(services, [raw]), records))
    with postgres_database.connection_context():
        owners = {s.session_id: s.tutor_id for s in Session.select()}
        daily = {row.tutor_id: row.sessions for row in TutorDailyCount.select()}
    assert len(owners) == 40
    assert daily.get("ta", 0) + daily.get("tb", 0) == 40
    assert daily.get("ta", 0) == sum(1 for owner in owners.values() if owner == "ta")


def test_an_older_delivery_picked_up_before_a_newer_one_does_not_overwrite_it(postgres_database, services):
    """Worker 1 picks up delivery A of s1 with a session of its own batch whose lock is held elsewhere, so it
    waits before reaching s1; meanwhile delivery B of s1, newer, is stored. When worker 1 gets to s1, A is
    superseded."""
    other_id = _a_session_locked_before(postgres_database, "s1")
    older = validate_session(raw_session("s1", "t1", NOW - dt.timedelta(days=1)))
    newer = validate_session(raw_session("s1", "t1", NOW - dt.timedelta(days=1), "rescheduled", "tutor"))
    other = validate_session(raw_session(other_id, "t0", NOW - dt.timedelta(days=1)))
    picked_up = inbox.accept(postgres_database, [other, older], NOW)
    holding, release = threading.Event(), threading.Event()

    def hold_the_other_session():
        with postgres_database.connection_context(), postgres_database.atomic():
            postgres_database.execute_sql("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SESSION_LOCKS, other_id))
            holding.set()
            release.wait(20)

    holder = threading.Thread(target=hold_the_other_session)
    holder.start()
    holding.wait(10)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        worker_1 = pool.submit(inbox.store_items, services, picked_up)
        wait_until(lambda: _waiting_for_a_lock(postgres_database), 10, "worker 1 to wait for the other session")
        inbox.store_items(services, inbox.accept(postgres_database, [newer], NOW))
        release.set()
        holder.join(20)
        worker_1.result(20)
    with postgres_database.connection_context():
        rescore_waiting(services)
        assert Session.get(Session.session_id == "s1").status == "rescheduled"
        assert TutorMetric.get((TutorMetric.tutor == "t1") & (TutorMetric.name == "tutor_reschedules_7d")).value == 1
        statuses = {(i.session_id, i.payload["status"]): i.status for i in InboxItem.select()}
    assert statuses == {(other_id, "completed"): "processed", ("s1", "completed"): "superseded",
                        ("s1", "rescheduled"): "processed"}


def _a_session_locked_before(database, session_id: str) -> str:
    """A session id whose advisory-lock key sorts before ``session_id``'s, so it is locked first."""
    with database.connection_context():
        for index in range(100):
            candidate = f"x{index}"
            if database.execute_sql("SELECT hashtext(%s) < hashtext(%s)", (candidate, session_id)).fetchone()[0]:
                return candidate
    raise AssertionError("no candidate id hashes below " + session_id)


def _waiting_for_a_lock(database) -> bool:
    with database.connection_context():
        return bool(database.execute_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()[0])
