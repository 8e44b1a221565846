"""Put a stored flag explanation into words for an admin, whatever rule wrote it.

Rules store their explanation as data (see docs/plugins.md). This reads the documented
keys (``decision``, ``rate``, ``events`` and ``events_label``, ``sessions`` and
``base_label``, ``window_days``, ``threshold``, ``clear_threshold``, ``min_sessions``) and
says what they mean; anything else a rule stores is listed as it is, so a new rule's
explanation is never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DECISIONS = ("above_threshold", "still_above_clear_threshold", "below_clear_threshold", "not_above_threshold",
             "too_few_sessions")
KNOWN_KEYS = {"rule", "rule_version", "decision", "rate", "sessions", "window_days", "threshold",
              "clear_threshold", "min_sessions", "events", "events_label", "base_label"}


def describe_explanation(explanation: Mapping[str, Any]) -> str:
    """One or two plain sentences: what was measured, and which condition decided the flag."""
    decision = str(explanation.get("decision") or "")
    measured = _measured(explanation)
    reason = _reason(decision, explanation)
    extras = [f"{key.replace('_', ' ')} {_value(value)}" for key, value in explanation.items()
              if key not in KNOWN_KEYS and not key.endswith("_reschedules") and isinstance(value, int | float | str)]
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
    }
    return reasons.get(decision) or decision.replace("_", " ")


def counted(count: int, label: str) -> str:
    """``1 no-show``, ``3 no-shows``: labels are plural, so one of them drops the final s."""
    return f"{count:,} {label[:-1] if count == 1 and label.endswith('s') else label}"


def _percent(value: Any) -> str:
    return f"{round(float(value), 1):g}%"


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
