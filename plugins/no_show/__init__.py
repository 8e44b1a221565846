"""The no-show rule: sessions the tutor missed, as a share of all sessions, over 7, 30 and 90 days.

16% of tutor replacements follow no-shows (PRD §2), and a missed session is worse than a
moved one, so the threshold is lower than the reschedule rule's, and a single week with
two no-shows is called out. Being rare, they are judged over 90 days. The flag, hysteresis
and risk score are the standard rate rule's (:mod:`engine.raterule`); settings are
``TQS_RULE_NO_SHOW_RATE_<SETTING>``.
"""

from __future__ import annotations

import datetime as dt

from engine.plugin import (
    WINDOW_DAYS,
    Advice,
    Assessment,
    Rate,
    RuleInfo,
    RuleSettings,
    TutorHistory,
    assess_rate,
    check_rate_settings,
    hookimpl,
    rate_metric_names,
    rate_settings,
)

RATE = Rate(name="no_show_rate", label="no-show rate", events="no_shows", events_label="no-shows")
METRICS, COUNTS = rate_metric_names(RATE, WINDOW_DAYS)
RULE = RuleInfo(
    name="no_show_rate",
    version="1.0.0",
    description="Sessions the tutor missed (no-shows) as a share of all sessions, over 7, 30 and 90 days",
    metrics=METRICS,
    counts=COUNTS,
    # No-shows are rare (about 2% of a reliable tutor's sessions): 30 days of a typical tutor's ~13
    # sessions cannot tell 2% from 8%, and one no-show would flag. 90 days of at least 15 can.
    settings=rate_settings(threshold=6.0, clear_threshold=4.0, window_days=90, min_sessions=15, prior_mean=4.0,
                           prior_strength=30.0),  # priors: fitted on the simulator (docs/flag-policies.md)
    rate=RATE,
    weight=1.2,  # a missed session costs the student more than a moved one
    rank=10,
)
BAD_WEEK = 2  # no-shows in seven days that deserve a call whatever the rate


@hookimpl
def describe_rule() -> RuleInfo:
    return RULE


@hookimpl
def check_settings(settings: RuleSettings) -> None:
    check_rate_settings(settings)


@hookimpl
def assess_tutor(history: TutorHistory, as_of: dt.datetime, was_flagged: bool, settings: RuleSettings) -> Assessment:
    return assess_rate(RATE, lambda counts: (counts.no_shows, counts.sessions), history, as_of, was_flagged, settings)


@hookimpl
def advise_tutor(history: TutorHistory, as_of: dt.datetime, assessment: Assessment, settings: RuleSettings) -> Advice:
    days = settings.window_days
    week, window = history.window(7, as_of), history.window(days, as_of)
    insights: list[str] = []
    recommendations: list[str] = []
    rate = assessment.metrics[RATE.metric(days)]
    if assessment.flagged and rate is not None:
        insights.append(f"{days}-day no-show rate {round(rate, 1):g}% is above the {settings.threshold:g}% threshold "
                        f"({window.no_shows} of {window.sessions} sessions missed)")
    if week.no_shows:
        insights.append(f"{_count(week.no_shows)} in the past 7 days")
    if window.first_session_no_shows:
        were = "was" if window.first_session_no_shows == 1 else "were"
        insights.append(f"{window.first_session_no_shows} of the {_count(window.no_shows)} in {days} days "
                        f"{were} a first session with a new student")
    if assessment.flagged or week.no_shows >= BAD_WEEK:
        recommendations.append("Call the tutor today about the missed sessions: a no-show often loses the student")
        recommendations.append("Check the tutor gets session reminders (a day and an hour before) and reads them")
    if assessment.severity == "high":
        recommendations.append("Pause new student assignments until a month passes without a no-show")
    if window.first_session_no_shows and assessment.flagged:
        recommendations.append("Have support contact the new students who were stood up and offer another tutor")
    if not assessment.flagged and assessment.severity == "low":
        recommendations.append("Watch: the no-show rate is close to the threshold")
    return Advice(insights=insights, recommendations=recommendations)


def _count(no_shows: int) -> str:
    return "1 no-show" if no_shows == 1 else f"{no_shows} no-shows"
