"""Session records for tests, and a brute-force oracle that counts windows the obvious way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from engine.validation import SessionRecord, parse_datetime, validate_session


def raw_session(
    session_id: str,
    tutor_id: str,
    when: dt.datetime,
    status: str = "completed",
    initiator: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A record as Rails would post it."""
    record: dict[str, Any] = {
        "session_id": session_id, "tutor_id": tutor_id, "student_id": f"stu-{session_id}",
        "scheduled_time": when.isoformat(), "status": status,
    }
    if status == "rescheduled":
        record["reschedule_info"] = {
            "initiator": initiator or "tutor", "reason": extra.pop("reason", "personal"),
            "original_time": when.isoformat(),
            "new_time": (when + dt.timedelta(days=2)).isoformat(),
        }
    record.update(extra)
    return record


def session(*args: Any, **kwargs: Any) -> SessionRecord:
    return validate_session(raw_session(*args, **kwargs))


def oracle_rate(records: Iterable[dict[str, Any]], tutor_id: str, as_of: dt.datetime, days: int):
    """(sessions, tutor reschedules, rate) over (as_of - days, as_of], counted one record at a time."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record["session_id"]] = record
    start = as_of - dt.timedelta(days=days)
    inside = [
        r for r in latest.values()
        if r["tutor_id"] == tutor_id and start < parse_datetime(r["scheduled_time"]) <= as_of
    ]
    moved = sum(
        1 for r in inside if r["status"] == "rescheduled" and r["reschedule_info"]["initiator"] == "tutor"
    )
    rate = round(100 * moved / len(inside), 2) if inside else None
    return len(inside), moved, rate
