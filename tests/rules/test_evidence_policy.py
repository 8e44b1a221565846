"""The evidence flag policy (``flag_policy=evidence``) on in-memory histories: the beta posterior, the windows,
the overrule by recent sessions, and explanations that put the evidence and the PRD verdict into words."""

import datetime as dt
import math

import pytest

from engine.config import ConfigError, Settings
from engine.evidence import beta_above, beta_cdf, decide_evidence, weigh
from engine.explanations import describe_explanation
from engine.registry import load_rules
from engine.testing import completed, days, no_show, rescheduled, run_rule
from plugins import no_show as no_show_rule
from rules import reschedule_rate as rule

NOW = dt.datetime(2026, 11, 25, 23, 59, 59, 999_999, tzinfo=dt.UTC)


def spread(count: int, first_day: float, last_day: float, make=completed):
    """``count`` sessions evenly between ``first_day`` and ``last_day`` days before NOW."""
    step = (last_day - first_day) / max(count, 1)
    return [make(NOW - days(first_day + step * (i + 0.5))) for i in range(count)]


def evidence(sessions, was_flagged=False, **settings):
    return run_rule(rule, sessions, NOW, was_flagged=was_flagged, flag_policy="evidence", **settings).assessment


@pytest.mark.parametrize(("x", "a", "b", "expected"), [
    (0.3, 1, 1, 0.3),  # the uniform distribution
    (0.5, 7.5, 7.5, 0.5),  # symmetric
    (0.2, 2, 3, 1 - (1 - 0.2) ** 3 * (1 + 3 * 0.2)),  # I_x(2, 3) in closed form
    (0.9, 1, 4, 1 - 0.1 ** 4),
])
def test_the_incomplete_beta_function_matches_closed_forms(x, a, b, expected):
    assert math.isclose(beta_cdf(x, a, b), expected, rel_tol=1e-10, abs_tol=1e-12)
    assert math.isclose(beta_above(x, a, b), 1 - expected, rel_tol=1e-9, abs_tol=1e-12)


def test_the_prior_shrinks_a_small_sample_toward_the_population():
    small, large = weigh({14: (2, 4), 90: (50, 100)}, 15, 12, prior_mean=8, prior_strength=6)
    assert small.mean == pytest.approx((0.48 + 2) / 10)  # 2 of 4 is 50% observed, 24.8% believed
    assert large.mean == pytest.approx((0.48 + 50) / 106)
    assert large.above > 0.999 and small.above < large.above


def test_a_burst_at_high_volume_is_flagged_from_the_two_day_window_before_the_prd_rule_sees_it():
    sessions = spread(300, 2, 30) + spread(60, 0, 2) + spread(25, 0, 2, rescheduled)  # 25 of 85 in two days
    result = evidence(sessions)
    assert result.flagged and result.explanation["window_days"] == 2
    assert result.explanation["rate_rule"] == {"flagged": False, "decision": "not_above_threshold",
                                               "window_days": 30, "rate": 6.49, "events": 25, "sessions": 385}
    assert result.risk_score == result.explanation["probability"] >= 90


def test_a_moderate_tutor_with_an_unlucky_month_is_flagged_by_the_prd_rule_but_not_by_evidence():
    sessions = spread(3, 0, 30, rescheduled) + spread(11, 0, 30)  # 3 of 14: 21%
    prd = run_rule(rule, sessions, NOW).assessment
    result = evidence(sessions)
    assert prd.flagged and not result.flagged
    assert result.explanation["decision"] == "evidence_not_above_threshold"
    assert result.explanation["probability"] < 90 and result.explanation["rate_rule"]["flagged"] is True
    text = describe_explanation(result.explanation)
    assert "sure the rate is above 15% (flags at 90%)" in text and "The PRD rule: 30-day rate 21.4%" in text
    assert "flagged." in text


def test_a_chronic_tutor_with_few_sessions_is_flagged_from_the_quarter():
    sessions = spread(12, 0, 90, rescheduled) + spread(18, 0, 90)  # 40% over 30 sessions in 90 days
    result = evidence(sessions)
    assert result.flagged and result.explanation["window_days"] in (30, 90)
    assert result.severity == "high"  # the posterior mean is at least twice the threshold


def test_a_recovered_tutor_is_judged_on_the_recent_fortnight_not_on_the_old_quarter():
    sessions = spread(12, 40, 90, rescheduled) + spread(12, 40, 90) + spread(25, 0, 14)
    result = evidence(sessions)
    assert not result.flagged and result.explanation["decision"] == "evidence_overruled_by_recent"
    assert result.explanation["overruled_by"]["window_days"] == 14
    assert "but recent ones do not (the last 14 days: 0 of 25 sessions were tutor reschedules)" in \
        describe_explanation(result.explanation)
    still = evidence(sessions, was_flagged=True)
    assert not still.flagged and still.explanation["decision"] == "evidence_below_clear"


def test_a_flag_stays_while_the_rate_may_still_be_above_the_clear_threshold():
    sessions = spread(3, 0, 30, rescheduled) + spread(17, 0, 30)  # 15%: not enough to raise, enough to hold
    assert not evidence(sessions).flagged
    held = evidence(sessions, was_flagged=True)
    assert held.flagged and held.explanation["decision"] == "evidence_still_above_clear"
    assert "likely still above 12%, so the flag stays" in describe_explanation(held.explanation)


def test_no_window_with_enough_sessions_never_flags_whatever_it_holds():
    result = evidence(spread(4, 0, 10, rescheduled), min_sessions=5)
    assert not result.flagged and result.explanation["decision"] == "too_few_sessions"


def test_a_higher_confidence_flags_fewer():
    sessions = spread(6, 0, 30, rescheduled) + spread(14, 0, 30)  # 6 of 20: 89% sure it is above 15%
    assert evidence(sessions, confidence=80.0).flagged
    assert not evidence(sessions, confidence=99.0).flagged


def test_decide_evidence_needs_a_fortnight_to_overrule_older_evidence():
    windows = weigh({2: (0, 12), 14: (6, 20), 30: (8, 30), 90: (20, 60)}, 15, 12, 8, 6)
    verdict = decide_evidence(windows, was_flagged=False, confidence=0.9, min_sessions=5)
    assert verdict.flagged and verdict.overruled_by is None  # a clean two days does not clear a bad month


def test_flag_policy_variable_sets_every_rate_rule_and_a_bad_value_names_it():
    rules = load_rules(Settings(rule_env={"TQS_FLAG_POLICY": "evidence"}), [rule, no_show_rule],
                       entry_points=False)
    assert {loaded.settings["flag_policy"] for loaded in rules.rules.values()} == {"evidence"}
    with pytest.raises(ConfigError, match="TQS_FLAG_POLICY='hunch': must be one of rate, evidence"):
        load_rules(Settings(rule_env={"TQS_FLAG_POLICY": "hunch"}), [rule], entry_points=False)


def test_the_no_show_rule_uses_its_own_prior():
    sessions = spread(2, 0, 14, no_show) + spread(30, 0, 90)
    result = run_rule(no_show_rule, sessions, NOW, flag_policy="evidence").assessment
    assert result.explanation["prior_mean"] == 4.0 and result.explanation["prior_strength"] == 30.0
    assert not result.flagged


def test_fit_prior_recovers_a_known_population():
    import random

    from engine.evidence import fit_prior

    rng = random.Random(1)
    counts = []
    for _ in range(3000):  # true rates ~ Beta(2, 18): mean 10%, worth 20 sessions
        rate, sessions = rng.betavariate(2, 18), rng.randint(10, 60)
        counts.append((sum(rng.random() < rate for _ in range(sessions)), sessions))
    mean, strength = fit_prior(counts)
    assert abs(mean - 10) < 0.5 and 16 < strength < 25
    assert fit_prior(counts[:5]) is None  # too few tutors to say
    assert fit_prior([(1, 10)] * 50) is None  # no spread beyond sampling: no prior to fit
