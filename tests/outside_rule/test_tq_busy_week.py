import datetime as dt

import tq_busy_week

from engine.testing import completed, days, run_rule

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


def test_a_packed_week_is_flagged():
    week = [completed(NOW - days(i / 5)) for i in range(30)]  # 30 sessions in 6 days
    result = run_rule(tq_busy_week, week, NOW)
    assert result.assessment.flagged and result.assessment.metrics["busy_week_sessions"] == 30
    assert "Booked for 30 sessions" in result.advice.insights[0]
    assert not run_rule(tq_busy_week, week, NOW, max_sessions=40).assessment.flagged
