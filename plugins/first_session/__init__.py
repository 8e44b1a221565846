"""The first-session rule: how a tutor's first sessions with new students go.

24% of churned students had a poor first session (PRD §2). A first session counts as poor
when the tutor rescheduled it or did not show up; the rule flags a tutor whose share of
poor first sessions is above its threshold. First sessions are rare (a few a month), so
it decides on the 90-day window by default and needs at least 3 of them. Settings are
``TQS_RULE_FIRST_SESSION_<SETTING>``.
"""

from __future__ import annotations

import datetime as dt

from engine.plugin import (
    WINDOW_DAYS,
    Advice,
    Assessment,
    Counts,
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

RATE = Rate(name="poor_first_session_rate", label="poor first-session rate", events="poor_first_sessions",
            events_label="poor first sessions", base="first_sessions", base_label="first sessions")
_RATE_METRICS, _RATE_COUNTS = rate_metric_names(RATE, WINDOW_DAYS)
BASE_METRICS = tuple(RATE.base_metric(days) for days in WINDOW_DAYS)
RULE = RuleInfo(
    name="first_session",
    version="1.0.0",
    description="First sessions with new students that the tutor rescheduled or missed, as a share of them",
    metrics=(*BASE_METRICS, *_RATE_METRICS),
    counts=(*BASE_METRICS, *_RATE_COUNTS),
    settings=rate_settings(threshold=25.0, clear_threshold=20.0, window_days=90, min_sessions=3, prior_mean=14.0,
                           prior_strength=5.0),  # priors: fitted on the simulator (docs/flag-policies.md)
    rate=RATE,
    weight=1.0,
    rank=20,
)


def poor_and_first(counts: Counts) -> tuple[int, int]:
    return counts.first_session_tutor_reschedules + counts.first_session_no_shows, counts.first_sessions


@hookimpl
def describe_rule() -> RuleInfo:
    return RULE


@hookimpl
def check_settings(settings: RuleSettings) -> None:
    check_rate_settings(settings)


@hookimpl
def assess_tutor(history: TutorHistory, as_of: dt.datetime, was_flagged: bool, settings: RuleSettings) -> Assessment:
    return assess_rate(RATE, poor_and_first, history, as_of, was_flagged, settings, extra_metrics=lambda windows: {
        RATE.base_metric(days): counts.first_sessions for days, counts in windows.items()})


@hookimpl
def advise_tutor(history: TutorHistory, as_of: dt.datetime, assessment: Assessment, settings: RuleSettings) -> Advice:
    days = settings.window_days
    window = history.window(days, as_of)
    poor, first = poor_and_first(window)
    insights: list[str] = []
    recommendations: list[str] = []
    if first and poor:
        insights.append(f"{poor} of {first} first sessions with new students in {days} days went badly "
                        f"({_parts(window)})")
    if window.first_session_tutor_reschedules and window.first_session_no_shows:
        insights.append("Both patterns: new students were moved and stood up")
    elif window.first_session_no_shows:
        insights.append("The pattern is missing first sessions, not moving them")
    elif window.first_session_tutor_reschedules:
        insights.append("The pattern is moving first sessions, which new students take as a bad start")
    if assessment.flagged:
        recommendations.append("Stop routing new students to this tutor until the next few first sessions go well")
        recommendations.append("Have support follow up with the students of the poor first sessions")
        if window.first_session_tutor_reschedules >= window.first_session_no_shows:
            recommendations.append("Ask the tutor to offer first sessions only in hours they can keep")
    elif assessment.severity == "low":
        recommendations.append("Watch the next first sessions: the share of poor ones is near the threshold")
    return Advice(insights=insights, recommendations=recommendations)


def _parts(counts: Counts) -> str:
    parts = []
    if counts.first_session_tutor_reschedules:
        parts.append(f"{counts.first_session_tutor_reschedules} rescheduled by the tutor")
    if counts.first_session_no_shows:
        parts.append(f"{counts.first_session_no_shows} missed")
    return ", ".join(parts)
