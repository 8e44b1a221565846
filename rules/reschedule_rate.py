"""The reschedule-rate rule (PRD FR-1 to FR-3): tutor-initiated reschedules / sessions.

Flag when the primary-window rate is above the threshold with at least the minimum
number of sessions; clear when it falls below the (lower) clear threshold or the
window holds too few sessions. The gap between the two thresholds stops a tutor
hovering at the threshold from flapping every day.

Risk score (0-100): 50 x (lower bound of the 95% Wilson interval of the primary rate)
/ threshold, capped at 100. So 50 means "95% sure the rate is at least the threshold",
100 means "at least twice it", and small samples score low until evidence builds up.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping

from engine.config import WINDOW_DAYS, Settings
from engine.hookspecs import hookimpl
from engine.rulekit import Advice, Assessment, RuleInfo, rate_percent, wilson_interval
from engine.windows import Counts, RescheduleFact, TutorHistory

SHORT_NOTICE_SECONDS = 24 * 3600


def _metric_names() -> tuple[str, ...]:
    names = []
    for days in WINDOW_DAYS:
        names += [f"sessions_{days}d", f"tutor_reschedules_{days}d", f"reschedule_rate_{days}d"]
    for days in WINDOW_DAYS:
        names += [f"reschedule_rate_{days}d_low", f"reschedule_rate_{days}d_high"]
    return tuple(names)


RULE = RuleInfo(
    name="reschedule_rate",
    version="1.0.0",
    description="Tutor-initiated reschedules as a share of all sessions, over 7, 30 and 90 days",
    metrics=_metric_names(),
    counts=tuple(f"{kind}_{days}d" for days in WINDOW_DAYS for kind in ("sessions", "tutor_reschedules")),
)


@hookimpl
def describe_rule() -> RuleInfo:
    return RULE


@hookimpl
def assess_tutor(
    history: TutorHistory, as_of: dt.datetime, previously_flagged: Mapping[str, bool], settings: Settings
) -> Assessment:
    windows = {days: history.window(days, as_of) for days in WINDOW_DAYS}
    primary = windows[settings.primary_window_days]
    was_flagged = previously_flagged.get(RULE.name, False)
    flagged, decision = _decide(primary, was_flagged, settings)
    rate = rate_percent(primary.tutor_reschedules, primary.sessions)
    return Assessment(
        rule=RULE.name,
        version=RULE.version,
        metrics=_metrics(windows),
        flagged=flagged,
        severity=_severity(flagged, rate, primary, settings),
        risk_score=_risk_score(primary, settings),
        explanation={
            "rule": RULE.name,
            "rule_version": RULE.version,
            "decision": decision,
            "window_days": settings.primary_window_days,
            "sessions": primary.sessions,
            "tutor_reschedules": primary.tutor_reschedules,
            "rate": rate,
            "threshold": settings.reschedule_threshold,
            "clear_threshold": settings.clear_threshold,
            "min_sessions": settings.min_sessions,
        },
    )


def _decide(primary: Counts, was_flagged: bool, settings: Settings) -> tuple[bool, str]:
    """The flag with hysteresis, and a short code saying which condition decided it."""
    if primary.sessions < settings.min_sessions:
        return False, "too_few_sessions"
    scaled = 100 * primary.tutor_reschedules  # compare exactly: rate > t  <=>  100 r > t n
    if was_flagged:
        if scaled < settings.clear_threshold * primary.sessions:
            return False, "below_clear_threshold"
        return True, "still_above_clear_threshold"
    if scaled > settings.reschedule_threshold * primary.sessions:
        return True, "above_threshold"
    return False, "not_above_threshold"


def _metrics(windows: Mapping[int, Counts]) -> dict[str, float | int | None]:
    metrics: dict[str, float | int | None] = {}
    for days, counts in windows.items():
        metrics[f"sessions_{days}d"] = counts.sessions
        metrics[f"tutor_reschedules_{days}d"] = counts.tutor_reschedules
        metrics[f"reschedule_rate_{days}d"] = rate_percent(counts.tutor_reschedules, counts.sessions)
        low, high = wilson_interval(counts.tutor_reschedules, counts.sessions) or (None, None)
        metrics[f"reschedule_rate_{days}d_low"] = low
        metrics[f"reschedule_rate_{days}d_high"] = high
    return metrics


def _severity(flagged: bool, rate: float | None, primary: Counts, settings: Settings) -> str:
    if flagged:
        return "high" if rate is not None and rate >= 2 * settings.reschedule_threshold else "medium"
    if rate is not None and primary.sessions >= settings.min_sessions and rate > settings.clear_threshold:
        return "low"
    return "none"


def _risk_score(primary: Counts, settings: Settings) -> float:
    interval = wilson_interval(primary.tutor_reschedules, primary.sessions)
    if interval is None:
        return 0.0
    if settings.reschedule_threshold <= 0:
        return 100.0 if interval[0] > 0 else 0.0
    return round(min(100.0, 50.0 * interval[0] / settings.reschedule_threshold), 1)


@hookimpl
def advise_tutor(
    history: TutorHistory, as_of: dt.datetime, assessments: Mapping[str, Assessment], settings: Settings
) -> Advice:
    assessment = assessments[RULE.name]
    metrics = assessment.metrics
    days = settings.primary_window_days
    recent = [r for r in history.reschedules(days, as_of) if r.initiator == "tutor"]
    week_start = as_of - dt.timedelta(days=7)
    insights: list[str] = []
    recommendations: list[str] = []

    rate = metrics[f"reschedule_rate_{days}d"]
    if assessment.flagged and rate is not None:
        insights.append(
            f"{days}-day reschedule rate {_pct(rate)} is above the {_pct(settings.reschedule_threshold)} "
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
    return Advice(rule=RULE.name, insights=insights, recommendations=[r for r in recommendations if r])


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
