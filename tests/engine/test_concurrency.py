"""Several workers scoring one tutor at once on PostgreSQL: the row lock keeps counts exact."""

import concurrent.futures
import datetime as dt
import random

import pytest

from engine.models import TutorMetric
from engine.pipeline import process_session, rescore_all
from engine.validation import validate_session
from tests.conftest import NOW
from tests.engine.state import derived_state, series_through
from tests.factories import oracle_rate, raw_session

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

