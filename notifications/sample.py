"""A made-up tutor and session for ``tqs email send-test``: the real template, no database needed."""

from __future__ import annotations

from typing import Any

from engine.rulekit import MetricNames
from engine.windows import WINDOW_DAYS


def sample_tutor(metric_names: MetricNames) -> dict[str, Any]:
    """A flagged tutor with a value for every loaded metric (rates near 20%, counts near 14)."""
    rates = {rate.metric(days) for _, rate in metric_names.rates for days in WINDOW_DAYS}
    metrics: dict[str, Any] = {}
    for name in metric_names:
        metrics[name] = 14 if name in metric_names.counts else (21.4 if name in rates else None)
    explanation = {"decision": "above_threshold", "rate": 21.4, "sessions": 14, "window_days": 30,
                   "threshold": 15.0, "clear_threshold": 12.0, "min_sessions": 5}
    return {
        **metrics,
        "tutor_id": "sample-tutor", "name": "Sample Tutor", "flagged": True, "risk_score": 62.0,
        "updated_at": None,
        "flags": [{"rule": "sample_rule", "rule_version": "0", "flagged": True, "severity": "medium",
                   "risk_score": 62.0, "explanation": explanation, "as_of": None}],
        "insights": ["This is a test message from tqs email send-test: no real tutor is involved"],
        "recommendations": ["Nothing to do: if you can read this, reports reach you"],
    }


def sample_session() -> dict[str, Any]:
    return {
        "session_id": "sample-session", "tutor_id": "sample-tutor", "student_id": "sample-student",
        "student_name": "Sample Student", "scheduled_time": "2026-11-25T15:00:00Z", "completed_time": None,
        "status": "rescheduled", "subject": "Algebra", "duration_minutes": 60, "is_first_session": False,
        "reschedule": {"initiator": "tutor", "reason": "a test of the transport", "at": None,
                       "session_id": "sample-session", "original_time": "2026-11-25T15:00:00Z",
                       "new_time": "2026-11-27T15:00:00Z", "requested_at": None, "notice_hours": 5.0,
                       "delay_hours": 48.0},
    }
