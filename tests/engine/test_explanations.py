"""Flag explanations in words, from the documented keys, for any rule."""

from engine.explanations import describe_explanation

RAISED = {"rule": "reschedule_rate", "decision": "above_threshold", "window_days": 30, "sessions": 22,
          "tutor_reschedules": 4, "rate": 18.18, "threshold": 15.0, "clear_threshold": 12.0, "min_sessions": 5}


def test_a_raise_says_the_rate_the_counts_and_the_threshold():
    assert describe_explanation(RAISED) == "30-day rate 18.2% (4 of 22 sessions), above the 15% threshold."


def test_a_clear_names_the_clear_level():
    cleared = {**RAISED, "decision": "below_clear_threshold", "tutor_reschedules": 2, "rate": 9.09}
    assert describe_explanation(cleared) == (
        "30-day rate 9.1% (2 of 22 sessions), below the 12% level at which a flag clears.")


def test_too_few_sessions_names_the_minimum():
    few = {**RAISED, "decision": "too_few_sessions", "sessions": 3, "tutor_reschedules": 2, "rate": 66.67}
    assert describe_explanation(few).endswith("fewer than the 5 sessions needed to flag.")


def test_another_rules_own_codes_and_numbers_are_not_hidden():
    assert describe_explanation({"decision": "recent_no_show", "no_shows_7d": 2}) == "Recent no show, no shows 7d 2."


def test_an_empty_explanation_says_so():
    assert describe_explanation({}) == "No explanation was recorded."


def test_a_rate_rule_names_what_it_counts_and_what_it_divides_by():
    explanation = {"decision": "too_few_sessions", "window_days": 90, "rate": 50.0, "events": 1,
                   "events_label": "poor first sessions", "sessions": 2, "base_label": "first sessions",
                   "threshold": 25.0, "clear_threshold": 20.0, "min_sessions": 3}
    assert describe_explanation(explanation) == (
        "90-day rate 50% (1 poor first session in 2 first sessions), fewer than the 3 first sessions needed to flag.")


EVIDENCE = {"decision": "evidence_above_threshold", "policy": "evidence", "window_days": 14, "rate": 63.64,
            "events": 7, "events_label": "tutor reschedules", "sessions": 11, "base_label": "sessions",
            "probability": 95.2, "probability_above_clear": 98.0, "estimate": 44.0, "confidence": 90.0,
            "threshold": 15.0, "clear_threshold": 12.0, "min_sessions": 5, "prior_mean": 8.0, "prior_strength": 6.0,
            "rate_rule": {"flagged": False, "decision": "not_above_threshold", "window_days": 30, "rate": 12.0,
                          "events": 3, "sessions": 25}}


def test_an_evidence_flag_gives_the_evidence_its_certainty_and_the_prd_verdict():
    assert describe_explanation(EVIDENCE) == (
        "7 of 11 sessions in the last 14 days were tutor reschedules; 95.2% sure the rate is above 15% (flags at "
        "90%). The PRD rule: 30-day rate 12% (3 tutor reschedules in 25 sessions), not flagged.")


def test_a_flag_caused_by_a_settings_change_says_who_changed_what_and_why():
    caused = {**RAISED, "settings_change": {"id": 4, "changed_by": "alice (env-admin-1)", "reason": "more coaches",
                                            "changes": {"threshold": ["15", "12"]}}}
    assert describe_explanation(caused).endswith(
        "After settings change 4 by alice (env-admin-1): threshold 15 \u2192 12 (\u201cmore coaches\u201d).")
    disabled = {"decision": "rule_disabled", "settings_change": {**caused["settings_change"],
                                                                 "changes": {"enabled": ["true", "false"]}}}
    assert describe_explanation(disabled).startswith("The rule was switched off. After settings change 4")
