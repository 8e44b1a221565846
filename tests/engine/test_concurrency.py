"""Several workers scoring one tutor at once on PostgreSQL: the row lock keeps counts exact."""

import concurrent.futures
import datetime as dt
import random
import threading

import pytest

from engine import inbox
from engine.models import InboxItem, Session, Tutor, TutorDailyCount, TutorMetric
from engine.pipeline import process_session, rescore_all
from engine.validation import validate_session
from tests.conftest import NOW
from tests.engine.state import derived_state, series_through
from tests.factories import oracle_rate, raw_session
from tests.support.processes import wait_until

pytestmark = pytest.mark.postgres


def test_concurrent_workers_on_one_tutor_keep_counts_exact(postgres_database, pm, settings):
    rng = random.Random(7)
    records = [
        raw_session(f"s{i}", "t1", NOW - dt.timedelta(days=rng.uniform(0, 95)),
                    *(("rescheduled", "tutor") if rng.random() < 0.3 else ("completed",)))
        for i in range(160)
    ]
    records += records[:40]  # some sessions are delivered twice, possibly at the same time
    rng.shuffle(records)

    def work(raw):
        process_session(postgres_database, pm, settings, validate_session(raw), NOW)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, records))

    with postgres_database.connection_context():
        stored = {m.name: m.value for m in TutorMetric.select().where(TutorMetric.tutor == "t1")}
    for days in (7, 30, 90):
        sessions, moved, rate = oracle_rate(records, "t1", NOW, days)
        assert (stored[f"sessions_{days}d"], stored[f"tutor_reschedules_{days}d"]) == (sessions, moved)
        assert stored[f"reschedule_rate_{days}d"] == rate
    through = series_through(postgres_database)
    concurrent_state = derived_state(postgres_database, through)
    rescore_all(postgres_database, pm, settings, NOW, rebuild=True)
    assert derived_state(postgres_database, through) == concurrent_state



def test_one_new_session_posted_under_two_tutors_at_once_is_counted_once(postgres_database, pm, settings):
    records = [raw_session(f"s{i}", tutor, NOW - dt.timedelta(days=1)) for i in range(40) for tutor in ("ta", "tb")]
    random.Random(3).shuffle(records)

    def work(raw):
        process_session(postgres_database, pm, settings, validate_session(raw), NOW)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, records))
    with postgres_database.connection_context():
        owners = {s.session_id: s.tutor_id for s in Session.select()}
        daily = {row.tutor_id: row.sessions for row in TutorDailyCount.select()}
    assert len(owners) == 40
    assert daily.get("ta", 0) + daily.get("tb", 0) == 40
    assert daily.get("ta", 0) == sum(1 for owner in owners.values() if owner == "ta")


def test_an_older_delivery_picked_up_before_a_newer_one_does_not_overwrite_it(postgres_database, pm, settings):
    """Worker 1 picks up delivery A (and a session of another tutor, whose lock it then waits for); meanwhile
    delivery B of the same session, newer, is stored and scored. When worker 1 reaches A, A is superseded."""
    older = validate_session(raw_session("s1", "t1", NOW - dt.timedelta(days=1)))
    newer = validate_session(raw_session("s1", "t1", NOW - dt.timedelta(days=1), "rescheduled", "tutor"))
    other = validate_session(raw_session("x0", "t0", NOW - dt.timedelta(days=1)))
    process_session(postgres_database, pm, settings, other, NOW)  # tutor t0 exists, so it can be locked
    picked_up = inbox.accept(postgres_database, [other, older], NOW)
    holding, release = threading.Event(), threading.Event()

    def hold_tutor_t0():
        with postgres_database.connection_context(), postgres_database.atomic():
            Tutor.select().where(Tutor.tutor_id == "t0").for_update().get()
            holding.set()
            release.wait(20)

    holder = threading.Thread(target=hold_tutor_t0)
    holder.start()
    holding.wait(10)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        worker_1 = pool.submit(inbox.process_items, postgres_database, pm, settings, picked_up, NOW)
        wait_until(lambda: _waiting_for_a_lock(postgres_database), 10, "worker 1 to wait for tutor t0")
        inbox.process_items(postgres_database, pm, settings, inbox.accept(postgres_database, [newer], NOW), NOW)
        release.set()
        holder.join(20)
        worker_1.result(20)
    with postgres_database.connection_context():
        assert Session.get(Session.session_id == "s1").status == "rescheduled"
        statuses = {(i.session_id, i.payload["status"]): i.status for i in InboxItem.select()}
    assert statuses == {("x0", "completed"): "processed", ("s1", "completed"): "superseded",
                        ("s1", "rescheduled"): "processed"}


def _waiting_for_a_lock(database) -> bool:
    with database.connection_context():
        return bool(database.execute_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()[0])
