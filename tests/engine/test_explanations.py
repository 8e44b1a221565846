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
