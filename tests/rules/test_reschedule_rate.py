"""The built-in rule on in-memory histories (``engine.testing``): no database, just the rule's decisions,
run through the engine's own checks."""

import datetime as dt

import pytest

from engine.plugin import wilson_interval
from engine.testing import completed, days, reschedule, rescheduled, run_rule
from engine.testing import history as history_of
from rules import reschedule_rate as rule

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def history(total: int, tutor_moves: int, student_moves: int = 0, days_back: int = 20, notice_hours: float = 48,
            reason: str = "personal"):
    """``total`` sessions spread over ``days_back`` days, the first ones rescheduled."""
    sessions, reschedules = [], []
    for i in range(total):
        when = NOW - dt.timedelta(days=days_back * (i + 1) / (total + 1))
        initiator = "tutor" if i < tutor_moves else "student" if i < tutor_moves + student_moves else None
        sessions.append(rescheduled(when, initiator) if initiator else completed(when))
        if initiator:
            reschedules.append(reschedule(when, initiator, reason, notice_hours, session_id=f"s{i}"))
    return history_of(sessions, reschedules)


def assess(h, was_flagged=False, **settings):
    return run_rule(rule, h, NOW, was_flagged=was_flagged, **settings).assessment


def test_rate_counts_only_tutor_initiated_reschedules_over_all_sessions():
    result = assess(history(total=10, tutor_moves=2, student_moves=3))
    assert result.metrics["reschedule_rate_30d"] == 20.0
    assert result.explanation["sessions"] == 10 and result.metrics["tutor_reschedules_30d"] == 2


def test_empty_window_has_no_rate_not_zero():
    empty = assess(history_of([]))
    assert empty.metrics["reschedule_rate_7d"] is None and empty.metrics["tutor_reschedules_7d"] == 0
    assert empty.risk_score == 0.0 and not empty.flagged


def test_flag_rises_only_above_threshold():
    assert not assess(history(total=20, tutor_moves=3)).flagged  # exactly 15%: not above
    assert assess(history(total=20, tutor_moves=4)).flagged  # 20%


def test_flag_clears_only_below_clear_threshold():
    hovering = history(total=20, tutor_moves=3)  # 15%: between 12 and 15
    assert assess(hovering, was_flagged=True).flagged
    assert not assess(hovering, was_flagged=False).flagged
    recovered = history(total=20, tutor_moves=2)  # 10% < 12%
    result = assess(recovered, was_flagged=True)
    assert not result.flagged and result.explanation["decision"] == "below_clear_threshold"


def test_minimum_sessions_guard_blocks_and_clears_flags():
    few = history(total=4, tutor_moves=3)  # 75% but only 4 sessions
    assert not assess(few).flagged
    result = assess(few, was_flagged=True)
    assert not result.flagged and result.explanation["decision"] == "too_few_sessions"


def test_explanation_records_counts_window_thresholds_and_version():
    explanation = assess(history(total=20, tutor_moves=5)).explanation
    assert explanation == {
        "rule_version": rule.RULE.version, "decision": "above_threshold", "window_days": 30, "rate": 25.0,
        "events": 5, "events_label": "tutor reschedules", "sessions": 20, "base_label": "sessions",
        "threshold": 15.0, "clear_threshold": 12.0, "min_sessions": 5,
    }


def test_thresholds_and_window_come_from_settings():
    assert not assess(history(total=20, tutor_moves=2)).flagged
    assert assess(history(total=20, tutor_moves=2), threshold=5, clear_threshold=4).flagged
    weekly = assess(history(total=20, tutor_moves=2, days_back=6), window_days=7)
    assert weekly.explanation["window_days"] == 7 and weekly.explanation["sessions"] == 20


def test_wilson_interval_separates_small_from_large_samples():
    small, large = wilson_interval(1, 3), wilson_interval(30, 90)
    assert small[0] < 10 < 60 < small[1]
    assert 24 < large[0] < 34 < large[1] < 44
    assert wilson_interval(0, 0) is None


def test_risk_score_grows_with_evidence_and_is_bounded():
    weak = assess(history(total=5, tutor_moves=2)).risk_score
    strong = assess(history(total=60, tutor_moves=24, days_back=29)).risk_score
    assert 0 < weak < strong <= 100
    assert assess(history(total=30, tutor_moves=0)).risk_score == 0


def test_severity_is_high_at_twice_the_threshold():
    assert assess(history(total=20, tutor_moves=4)).severity == "medium"
    assert assess(history(total=20, tutor_moves=7)).severity == "high"


def insights_for(h, was_flagged=False):
    return run_rule(rule, h, NOW, was_flagged=was_flagged).advice


def test_insights_are_specific_and_computed():
    advice = insights_for(history(total=10, tutor_moves=4, days_back=6, notice_hours=5))
    assert "30-day reschedule rate 40% is above the 15% threshold (4 of 10 sessions)" in advice.insights
    assert "Rescheduled 4 times in the past 7 days" in advice.insights
    assert "4 of 4 reschedules gave less than 24 hours' notice" in advice.insights
    assert "Most common reason: personal (100%)" in advice.insights
    assert any("coaching" in line for line in advice.recommendations)
    assert any("24 hours ahead" in line for line in advice.recommendations)


def test_reliable_tutor_gets_no_alarm():
    advice = insights_for(history(total=20, tutor_moves=0))
    assert advice.insights == [] and advice.recommendations == []


@pytest.mark.parametrize(("reason", "phrase"), [("illness", "backup tutor"), ("scheduling conflict", "availability")])
def test_recommendation_follows_the_most_common_reason(reason, phrase):
    advice = insights_for(history(total=10, tutor_moves=4, reason=reason))
    assert any(phrase in line for line in advice.recommendations)


def test_rising_trend_is_called_out():
    sessions = [completed(NOW - days(d)) for d in range(8, 88, 2)]
    recent = [rescheduled(NOW - days(d)) for d in (1, 2)] + [completed(NOW - days(d)) for d in (3, 4)]
    h = history_of(sessions + recent)
    assert any(line.startswith("7-day rate 50% is") and "the 90-day rate" in line for line in insights_for(h).insights)
