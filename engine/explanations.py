"""Put a stored flag explanation into words for an admin, whatever rule wrote it.

Rules store their explanation as data (see docs/plugins.md). This reads the documented
keys (``decision``, ``rate``, ``events`` and ``events_label``, ``sessions`` and
``base_label``, ``window_days``, ``threshold``, ``clear_threshold``, ``min_sessions``) and
says what they mean; anything else a rule stores is listed as it is, so a new rule's
explanation is never hidden. An explanation of the evidence policy (``policy: evidence``)
says how sure the sessions make us, and what the PRD rule would have said.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DECISIONS = ("above_threshold", "still_above_clear_threshold", "below_clear_threshold", "not_above_threshold",
             "too_few_sessions")
EVIDENCE_DECISIONS = ("evidence_above_threshold", "evidence_still_above_clear", "evidence_below_clear",
                      "evidence_not_above_threshold", "evidence_overruled_by_recent", "too_few_sessions")
KNOWN_KEYS = {"rule", "rule_version", "decision", "rate", "sessions", "window_days", "threshold",
              "clear_threshold", "min_sessions", "events", "events_label", "base_label"}
EVIDENCE_KEYS = {"policy", "probability", "probability_above_clear", "estimate", "confidence", "prior_mean",
                 "prior_strength", "rate_rule", "overruled_by", "settings_change"}


def describe_explanation(explanation: Mapping[str, Any]) -> str:
    """One or two plain sentences: what was measured, and which condition decided the flag (and the settings
    change that caused it, if one did)."""
    described = describe_evidence(explanation) if explanation.get("policy") == "evidence" \
        else _describe_rate(explanation)
    cause = explanation.get("settings_change")
    return f"{described} {describe_cause(cause)}" if isinstance(cause, Mapping) else described


def describe_cause(cause: Mapping[str, Any]) -> str:
    """``After settings change 3 by alice: threshold 15 → 12 ("coaching capacity doubled").``"""
    changes = cause.get("changes") or {}
    what = ", ".join(f"{name} {old} \u2192 {new}" for name, (old, new) in changes.items()
                     if isinstance(changes, Mapping)) or "settings"
    return (f"After settings change {cause.get('id')} by {cause.get('changed_by') or 'someone'}: {what} "
            f"(\u201c{cause.get('reason') or ''}\u201d).")


def _describe_rate(explanation: Mapping[str, Any]) -> str:
    decision = str(explanation.get("decision") or "")
    measured = _measured(explanation)
    reason = _reason(decision, explanation)
    extras = [f"{key.replace('_', ' ')} {_value(value)}" for key, value in explanation.items()
              if key not in KNOWN_KEYS | EVIDENCE_KEYS and not key.endswith("_reschedules")
              and isinstance(value, int | float | str)]
    parts = [part for part in (measured, reason) if part]
    if extras:
        parts.append(", ".join(extras))
    if not parts:
        return "No explanation was recorded."
    sentence = ", ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def _measured(explanation: Mapping[str, Any]) -> str:
    rate, sessions, days = explanation.get("rate"), explanation.get("sessions"), explanation.get("window_days")
    window = f"{days}-day" if days else "the"
    base = str(explanation.get("base_label") or "sessions")
    if rate is not None and sessions:
        events = explanation.get("events")
        if events is None:  # explanations stored before rules named their counts
            events = next((v for k, v in explanation.items() if k.endswith("_reschedules") and isinstance(v, int)),
                          None)
        label = explanation.get("events_label")
        if events is None:
            share = counted(sessions, base)
        else:
            share = (f"{counted(events, label)} in {counted(sessions, base)}" if label
                     else f"{events} of {counted(sessions, base)}")
        return f"{window} rate {_percent(rate)} ({share})"
    if sessions is not None and days:
        return f"{counted(sessions, base)} in {days} days"
    return ""


def _reason(decision: str, explanation: Mapping[str, Any]) -> str:
    threshold, clear = explanation.get("threshold"), explanation.get("clear_threshold")
    minimum = explanation.get("min_sessions")
    reasons = {
        "above_threshold": f"above the {_percent(threshold)} threshold" if threshold is not None else "",
        "still_above_clear_threshold": (f"still at or above the {_percent(clear)} level at which a flag clears"
                                        if clear is not None else ""),
        "below_clear_threshold": f"below the {_percent(clear)} level at which a flag clears"
                                 if clear is not None else "",
        "not_above_threshold": f"not above the {_percent(threshold)} threshold" if threshold is not None else "",
        "too_few_sessions": (f"fewer than the {minimum} {explanation.get('base_label') or 'sessions'} needed to flag"
                             if minimum is not None else ""),
        "rule_disabled": "the rule was switched off",
    }
    return reasons.get(decision) or decision.replace("_", " ")


def describe_evidence(explanation: Mapping[str, Any]) -> str:
    """The evidence behind a flag in words: the window's counts, how sure they make us, and the PRD rule beside.

    "7 of 11 sessions in the last 14 days were tutor reschedules; 95% sure the rate is above 15%
    (flags at 90%). The PRD rule: 30-day rate 12% (3 of 25 sessions), not flagged."
    """
    decision = str(explanation.get("decision") or "")
    threshold, clear = explanation.get("threshold"), explanation.get("clear_threshold")
    sure, sure_clear = explanation.get("probability"), explanation.get("probability_above_clear")
    confidence = explanation.get("confidence")
    seen = _window_counts(explanation)
    reasons = {
        "evidence_above_threshold": f"{_percent(sure)} sure the rate is above {_percent(threshold)} "
                                    f"(flags at {_percent(confidence)})",
        "evidence_not_above_threshold": f"only {_percent(sure)} sure the rate is above {_percent(threshold)} "
                                        f"(flags at {_percent(confidence)})",
        "evidence_still_above_clear": f"{_percent(sure_clear)} likely still above {_percent(clear)}, "
                                      "so the flag stays",
        "evidence_below_clear": f"only {_percent(sure_clear)} likely still above {_percent(clear)}, "
                                "so the flag clears",
        "evidence_overruled_by_recent": "older sessions pointed above the threshold, but recent ones do not",
        "too_few_sessions": f"fewer than the {explanation.get('min_sessions')} "
                            f"{explanation.get('base_label') or 'sessions'} needed to flag",
    }
    sentence = f"{seen}; {reasons.get(decision) or decision.replace('_', ' ')}" if seen else reasons.get(decision, "")
    overruled = explanation.get("overruled_by")
    if isinstance(overruled, Mapping) and overruled.get("window_days") != explanation.get("window_days"):
        sentence += f" (the last {overruled.get('window_days')} days: {_share(overruled, explanation)})"
    sentence = sentence[0].upper() + sentence[1:] + "." if sentence else "No explanation was recorded."
    prd = explanation.get("rate_rule")
    if isinstance(prd, Mapping):
        verdict = "flagged" if prd.get("flagged") else "not flagged"
        measured = _measured({**prd, "base_label": explanation.get("base_label"),
                              "events_label": explanation.get("events_label")}) or "no sessions"
        sentence += f" The PRD rule: {measured}, {verdict}."
    return sentence


def _window_counts(explanation: Mapping[str, Any]) -> str:
    days = explanation.get("window_days")
    if explanation.get("sessions") is None or not days:
        return ""
    return _share(explanation, explanation, f" in the last {days} days")


def _share(window: Mapping[str, Any], explanation: Mapping[str, Any], span: str = "") -> str:
    """``7 of 11 sessions in the last 14 days were tutor reschedules``."""
    base = str(explanation.get("base_label") or "sessions")
    label = str(explanation.get("events_label") or "events")
    events, sessions = window.get("events"), int(window.get("sessions") or 0)
    verb = "was" if sessions == 1 else "were"
    return f"{events} of {counted(sessions, base)}{span} {verb} {label}"


def counted(count: int, label: str) -> str:
    """``1 no-show``, ``3 no-shows``: labels are plural, so one of them drops the final s."""
    return f"{count:,} {label[:-1] if count == 1 and label.endswith('s') else label}"


def _percent(value: Any) -> str:
    return f"{round(float(value), 1):g}%"


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
