"""The common shape of a rule: a rate over the 7/30/90-day windows, flagged above a threshold.

Flag when the primary window's rate is above ``threshold`` with at least ``min_sessions``
in it; clear when it falls below ``clear_threshold`` (lower) or the window holds too few.
The gap between the two stops a tutor hovering at the threshold from flapping daily.

Risk (0-100): 50 x (lower bound of the 95% Wilson interval of the primary rate) / threshold,
capped at 100. So 50 means "95% sure the rate is at least the threshold", 100 "at least
twice it", and small samples score low until evidence builds up.

With ``flag_policy=evidence`` (``TQS_FLAG_POLICY``) the flag is decided by
:mod:`engine.evidence` instead: how sure the tutor's windows make us that the rate is above the
threshold, with the PRD rule's verdict kept beside it in the explanation; the risk score is then
that certainty in percent.

Rules built on this share its settings, its decision codes (which the explanations put into
words) and its metrics, so a rule is its counting and its advice; see plugins/no_show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.evidence import EVIDENCE_WINDOWS, EvidenceVerdict, WindowEvidence, decide_evidence, weigh
from engine.rulekit import Assessment, Rate, RuleSettings, Setting, rate_metrics, rate_percent, wilson_interval
from engine.windows import WINDOW_DAYS, Counts, TutorHistory

FLAG_POLICIES = ("rate", "evidence")
FLAG_POLICY_VARIABLE = "TQS_FLAG_POLICY"  # every rate rule's flag_policy at once

EventsAndBase = Callable[[Counts], tuple[int, int]]


def rate_settings(threshold: float, clear_threshold: float, window_days: int = 30, min_sessions: int = 5,
                  aliases: Mapping[str, str] | None = None, prior_mean: float = 8.0,
                  prior_strength: float = 6.0) -> tuple[Setting, ...]:
    """The settings of a rate rule with these defaults; ``aliases`` maps a setting to an older variable.

    ``prior_mean`` (percent) and ``prior_strength`` (sessions) describe the population's rate for the
    evidence policy: ``tqs rules fit-prior`` estimates them from the stored counts.
    """
    aliases = aliases or {}

    def named(name: str) -> tuple[str, ...]:
        return (aliases[name],) if name in aliases else ()

    return (
        Setting("threshold", float(threshold), "flag above this rate, in percent", 0.0, 100.0,
                aliases=named("threshold")),
        Setting("clear_threshold", float(clear_threshold), "a flag clears below this rate, in percent", 0.0, 100.0,
                aliases=named("clear_threshold")),
        Setting("window_days", int(window_days), "the window whose rate decides the flag", choices=WINDOW_DAYS,
                aliases=named("window_days")),
        Setting("min_sessions", int(min_sessions), "fewest sessions in the window to flag at all", 1,
                aliases=named("min_sessions")),
        Setting("flag_policy", "rate", "rate: the PRD rule on the window's rate; evidence: flag when the "
                "sessions make us confident the rate is above the threshold", choices=FLAG_POLICIES,
                aliases=(FLAG_POLICY_VARIABLE,)),
        Setting("confidence", 90.0, "evidence policy: how sure (percent) to be that the rate is above the "
                "threshold before flagging", 50.0, 99.9),
        Setting("prior_mean", float(prior_mean), "evidence policy: the population's typical rate, in percent",
                0.1, 99.9),
        Setting("prior_strength", float(prior_strength), "evidence policy: how many sessions the population's "
                "rate is worth against a tutor's own", 0.1, 1000.0),
    )


def check_rate_settings(settings: RuleSettings) -> None:
    if settings.clear_threshold > settings.threshold:
        raise ValueError(f"clear_threshold ({settings.clear_threshold:g}) must not exceed "
                         f"threshold ({settings.threshold:g})")


def assess_rate(rate: Rate, count: EventsAndBase, history: TutorHistory, as_of: Any, was_flagged: bool,
                settings: RuleSettings, extra_metrics: Callable[[Mapping[int, Counts]], dict] | None = None
                ) -> Assessment:
    """The whole assessment of a rate rule: ``count`` turns a window's counts into (events, base)."""
    windows = {days: history.window(days, as_of) for days in WINDOW_DAYS}
    counted = {days: count(counts) for days, counts in windows.items()}
    events, base = counted[settings.window_days]
    metrics = rate_metrics(rate, counted)
    if extra_metrics:
        metrics.update(extra_metrics(windows))
    if settings.flag_policy == "evidence":
        recent = {days: count(history.window(days, as_of)) for days in EVIDENCE_WINDOWS}
        return _assess_evidence(rate, metrics, recent, (events, base), was_flagged, settings)
    flagged, decision = decide(events, base, was_flagged, settings)
    rate_now = rate_percent(events, base)
    return Assessment(
        metrics=metrics,
        flagged=flagged,
        severity=severity(flagged, rate_now, base, settings),
        risk_score=risk_score(events, base, settings.threshold),
        explanation={
            "decision": decision, "window_days": settings.window_days, "rate": rate_now,
            "events": events, "events_label": rate.events_label, "sessions": base, "base_label": rate.base_label,
            "threshold": settings.threshold, "clear_threshold": settings.clear_threshold,
            "min_sessions": settings.min_sessions,
        },
    )


def _assess_evidence(rate: Rate, metrics: dict, counted: Mapping[int, tuple[int, int]],
                     primary: tuple[int, int], was_flagged: bool, settings: RuleSettings) -> Assessment:
    """The evidence policy's assessment: the flag, and why, from the window it rests on."""
    evidence = weigh(counted, settings.threshold, settings.clear_threshold, settings.prior_mean,
                     settings.prior_strength)
    verdict = decide_evidence(evidence, was_flagged, settings.confidence / 100, settings.min_sessions)
    window = verdict.deciding
    usable = evidence if verdict.overruled_by is None else [w for w in evidence if w.days <= verdict.overruled_by.days]
    certainty = max((w.above for w in usable if w.base >= settings.min_sessions), default=0.0)
    prd_flagged, prd_decision = decide(*primary, False, settings)
    explanation = {
        "decision": verdict.decision, "policy": "evidence",
        "window_days": window.days, "rate": rate_percent(window.events, window.base), "events": window.events,
        "events_label": rate.events_label, "sessions": window.base, "base_label": rate.base_label,
        "probability": _percent(window.above), "probability_above_clear": _percent(window.above_clear),
        "estimate": _percent(window.mean), "confidence": settings.confidence,
        "threshold": settings.threshold, "clear_threshold": settings.clear_threshold,
        "min_sessions": settings.min_sessions, "prior_mean": settings.prior_mean,
        "prior_strength": settings.prior_strength,
        "rate_rule": {"flagged": prd_flagged, "decision": prd_decision, "window_days": settings.window_days,
                      "rate": rate_percent(*primary), "events": primary[0], "sessions": primary[1]},
    }
    if verdict.overruled_by is not None:
        explanation["overruled_by"] = _window(verdict.overruled_by)
    return Assessment(
        metrics=metrics,
        flagged=verdict.flagged,
        severity=_evidence_severity(verdict, settings),
        risk_score=round(100 * certainty, 1),
        explanation=explanation,
    )


def _evidence_severity(verdict: EvidenceVerdict, settings: RuleSettings) -> str:
    window = verdict.deciding
    if verdict.flagged:
        return "high" if 100 * window.mean >= 2 * settings.threshold else "medium"
    if window.base >= settings.min_sessions and window.above_clear >= 0.5:
        return "low"
    return "none"


def _window(window: WindowEvidence) -> dict:
    return {"window_days": window.days, "events": window.events, "sessions": window.base,
            "rate": rate_percent(window.events, window.base), "probability_above_clear": _percent(window.above_clear)}


def _percent(probability: float) -> float:
    return round(100 * probability, 1)


def decide(events: int, base: int, was_flagged: bool, settings: RuleSettings) -> tuple[bool, str]:
    """The flag with hysteresis, and a short code saying which condition decided it."""
    if base < settings.min_sessions:
        return False, "too_few_sessions"
    scaled = 100 * events  # compare exactly: rate > t  <=>  100 e > t n
    if was_flagged:
        if scaled < settings.clear_threshold * base:
            return False, "below_clear_threshold"
        return True, "still_above_clear_threshold"
    if scaled > settings.threshold * base:
        return True, "above_threshold"
    return False, "not_above_threshold"


def severity(flagged: bool, rate: float | None, base: int, settings: RuleSettings) -> str:
    if flagged:
        return "high" if rate is not None and rate >= 2 * settings.threshold else "medium"
    if rate is not None and base >= settings.min_sessions and rate > settings.clear_threshold:
        return "low"
    return "none"


def risk_score(events: int, base: int, threshold: float) -> float:
    interval = wilson_interval(events, base)
    if interval is None:
        return 0.0
    if threshold <= 0:
        return 100.0 if interval[0] > 0 else 0.0
    return round(min(100.0, 50.0 * interval[0] / threshold), 1)
