"""engine.backtest on a stored history: the replay agrees with scoring, and a series of what-ifs reuses its
baseline (the counts read and the current settings' replay) instead of replaying it again."""

from __future__ import annotations

import datetime as dt

from engine.backtest import backtest
from engine.ingest import ingest
from tests.conftest import NOW
from tests.factories import raw_session

LOWER = {"threshold": "8", "clear_threshold": "6"}


def seeded(services, tutors: int = 6):
    records = [raw_session(f"t{t}-{i}", f"t{t}", NOW - dt.timedelta(days=40 * (i + 1) / 21),
                           "rescheduled" if i < t else "completed", "tutor" if i < t else None)
               for t in range(tutors) for i in range(20)]
    with services.database.connection_context():
        ingest(services, records)


def test_the_current_replay_matches_the_stored_flags_and_a_lower_threshold_flags_more(services):
    seeded(services)
    rule = services.rules.names[0]
    result = backtest(services.database, services.rules, rule, LOWER, NOW.date(), 90)
    assert result.current.flagged_now == result.stored_flagged
    assert result.current.flagged_now < result.proposed.flagged_now
    assert set(result.newly_flagged) == result.proposed.flagged_now - result.current.flagged_now


def test_a_series_of_what_ifs_reuses_the_baseline(services):
    seeded(services)
    rule = services.rules.names[0]
    baselines: dict = {}
    first = backtest(services.database, services.rules, rule, LOWER, NOW.date(), 90,
                     baselines=baselines)
    second = backtest(services.database, services.rules, rule, {"threshold": "20"}, NOW.date(), 90,
                      baselines=baselines)
    assert second.current is first.current and len(baselines) == 1
    assert second.proposed.flagged_now <= second.current.flagged_now <= first.proposed.flagged_now
    other = backtest(services.database, services.rules, rule, LOWER, NOW.date(), 30,
                     baselines=baselines)
    assert other.current is not first.current and len(baselines) == 1  # another period: a new baseline
