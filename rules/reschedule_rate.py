"""The reschedule-rate rule (PRD FR-1 to FR-3): tutor-initiated reschedules / sessions.

The flag, its hysteresis and the risk score are those of every rate rule
(:mod:`engine.raterule`). Its settings keep the variables documented before rules had
their own (``TQS_RESCHEDULE_THRESHOLD``, ``TQS_CLEAR_THRESHOLD``, ``TQS_PRIMARY_WINDOW_DAYS``,
``TQS_MIN_SESSIONS``); ``TQS_RULE_RESCHEDULE_RATE_<SETTING>`` works as for any rule.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping

from engine.plugin import (
    WINDOW_DAYS,
    Advice,
    Assessment,
    Rate,
    RescheduleFact,
    RuleInfo,
    RuleSettings,
    TutorHistory,
    assess_rate,
    check_rate_settings,
    hookimpl,
    rate_metric_names,
    rate_settings,
)

SHORT_NOTICE_SECONDS = 24 * 3600
RATE = Rate(name="reschedule_rate", label="reschedule rate", events="tutor_reschedules",
            events_label="tutor reschedules")
METRICS, COUNTS = rate_metric_names(RATE, WINDOW_DAYS)


RULE = RuleInfo(
    name="reschedule_rate",
    version="2.0.0",
    description="Tutor-initiated reschedules as a share of all sessions, over 7, 30 and 90 days",
    metrics=METRICS,
    counts=COUNTS,
    settings=rate_settings(15.0, 12.0, 30, 5, aliases={
        "threshold": "TQS_RESCHEDULE_THRESHOLD", "clear_threshold": "TQS_CLEAR_THRESHOLD",
        "window_days": "TQS_PRIMARY_WINDOW_DAYS", "min_sessions": "TQS_MIN_SESSIONS"}),
    rate=RATE,
    weight=1.0,
    rank=0,  # the product began with it: listed first
)


@hookimpl
def describe_rule() -> RuleInfo:
    return RULE


@hookimpl
def check_settings(settings: RuleSettings) -> None:
    check_rate_settings(settings)


@hookimpl
def assess_tutor(history: TutorHistory, as_of: dt.datetime, was_flagged: bool, settings: RuleSettings) -> Assessment:
    return assess_rate(RATE, lambda counts: (counts.tutor_reschedules, counts.sessions), history, as_of, was_flagged,
                       settings)


@hookimpl
def advise_tutor(history: TutorHistory, as_of: dt.datetime, assessment: Assessment, settings: RuleSettings) -> Advice:
    metrics = {**assessment.metrics, **{f"sessions_{d}d": history.window(d, as_of).sessions for d in WINDOW_DAYS}}
    days = settings.window_days
    recent = [r for r in history.reschedules(days, as_of) if r.initiator == "tutor"]
    week_start = as_of - dt.timedelta(days=7)
    insights: list[str] = []
    recommendations: list[str] = []

    rate = metrics[f"reschedule_rate_{days}d"]
    if assessment.flagged and rate is not None:
        insights.append(
            f"{days}-day reschedule rate {_pct(rate)} is above the {_pct(settings.threshold)} "
            f"threshold ({metrics[f'tutor_reschedules_{days}d']} of {metrics[f'sessions_{days}d']} sessions)"
        )
    this_week = sum(1 for r in recent if r.scheduled_time > week_start)
    if this_week:
        insights.append(f"Rescheduled {_times(this_week)} in the past 7 days")
    short, known = _short_notice(recent)
    if short:
        insights.append(f"{short} of {known} reschedules gave less than 24 hours' notice")
    reason, share = _top_reason(recent)
    if reason:
        insights.append(f"Most common reason: {reason} ({share:.0f}%)")
    trend = _trend(metrics)
    if trend:
        insights.append(trend[0])

    if assessment.flagged:
        if assessment.severity == "high":
            recommendations.append("Call the tutor this week: at this rate their students are likely to churn")
        recommendations.append("Schedule a reliability coaching session and review their availability settings")
    if short and short * 2 >= known:
        recommendations.append(
            "Ask the tutor to change availability at least 24 hours ahead; last-minute moves hurt most"
        )
    if trend and trend[1] == "rising":
        recommendations.append("Check in now: the last week is worse than their long-term rate")
    if reason and assessment.flagged:
        recommendations.append(_reason_advice(reason))
    if not assessment.flagged and assessment.severity == "low":
        recommendations.append("Watch: the rate is close to the threshold")
    return Advice(insights=insights, recommendations=[r for r in recommendations if r])


def _short_notice(reschedules: list[RescheduleFact]) -> tuple[int, int]:
    notices = [r.notice_seconds for r in reschedules if r.notice_seconds is not None]
    return sum(1 for n in notices if n < SHORT_NOTICE_SECONDS), len(notices)


def _top_reason(reschedules: list[RescheduleFact]) -> tuple[str | None, float]:
    reasons = Counter(r.reason.strip().lower() for r in reschedules if r.reason and r.reason.strip())
    total = sum(reasons.values())
    if total < 2:
        return None, 0.0
    reason, count = reasons.most_common(1)[0]
    return reason, 100.0 * count / total


def _trend(metrics: Mapping[str, float | int | None]) -> tuple[str, str] | None:
    week, quarter = metrics["reschedule_rate_7d"], metrics["reschedule_rate_90d"]
    if week is None or quarter is None or (metrics["sessions_7d"] or 0) < 3:
        return None
    if quarter > 0 and week >= 1.5 * quarter:
        ratio = week / quarter
        times = "twice" if round(ratio, 1) == 2.0 else f"{ratio:.1f} times"
        return f"7-day rate {_pct(week)} is {times} the 90-day rate ({_pct(quarter)})", "rising"
    if quarter >= 10 and week <= quarter / 2:
        return f"7-day rate {_pct(week)} is well below the 90-day rate ({_pct(quarter)}): improving", "falling"
    return None


def _reason_advice(reason: str) -> str:
    if any(word in reason for word in ("ill", "sick", "emergency", "family")):
        return f"Most reschedules cite {reason}: offer support and line up a backup tutor for their students"
    if any(word in reason for word in ("schedul", "conflict", "calendar")):
        return "Recurring scheduling conflicts: have the tutor fix their published availability"
    if any(word in reason for word in ("technical", "internet", "connection", "device")):
        return "Technical problems recur: have support check the tutor's setup"
    return f"Discuss the most common reason ({reason}) in the coaching session"


def _pct(value: float) -> str:
    return f"{round(value, 1):g}%"


def _times(count: int) -> str:
    return "once" if count == 1 else "twice" if count == 2 else f"{count} times"
