"""The one validation of a session record, shared by the CLI, the API and the simulator.

Every problem is collected, each naming its field, so a client fixes them all at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("completed", "rescheduled", "no_show")
INITIATORS = ("tutor", "student")
MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 200
MAX_REASON_LENGTH = 2000
MAX_DURATION_MINUTES = 24 * 60
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
# Control characters: none in an id (in a log line a newline would forge an event), and in other text only tabs
# and line breaks (an escape sequence in a name would drive the terminal that `tqs tutors` prints to).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TEXT_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ValidationError(ValueError):
    """A session record failed validation; ``errors`` names every bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(map(str, errors)))


@dataclass(frozen=True)
class RescheduleInfo:
    initiator: str
    original_time: dt.datetime
    new_time: dt.datetime | None = None
    reason: str | None = None
    requested_at: dt.datetime | None = None

    @property
    def notice(self) -> dt.timedelta | None:
        """How long before the original slot the reschedule was asked for."""
        return None if self.requested_at is None else self.original_time - self.requested_at

    @property
    def delay(self) -> dt.timedelta | None:
        """How far the session moved."""
        return None if self.new_time is None else self.new_time - self.original_time


@dataclass(frozen=True)
class SessionRecord:
    """A validated session; datetimes are timezone-aware UTC."""

    session_id: str
    tutor_id: str
    student_id: str
    scheduled_time: dt.datetime
    status: str
    completed_time: dt.datetime | None = None
    reschedule: RescheduleInfo | None = None
    tutor_name: str | None = None
    student_name: str | None = None
    subject: str | None = None
    duration_minutes: int | None = None
    is_first_session: bool | None = None


def parse_datetime(value: Any) -> dt.datetime:
    """ISO 8601 to aware UTC; a value without a zone is read as UTC. Years outside 1970-2099 are refused."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 datetime string")
    try:
        if CONTROL.search(value.strip()):  # fromisoformat reads "…Z\x00junk" as "…Z" (it stops at the NUL)
            raise ValueError
        parsed = dt.datetime.fromisoformat(value.strip())
        parsed = parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 datetime") from None
    if not EARLIEST <= parsed < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year - 1}")
    return parsed


def storable(text: str) -> bool:
    """False for NUL (Postgres text cannot hold it) and lone surrogates (not Unicode at all)."""
    return UNSTORABLE.search(text) is None


class _Reader:
    """Pulls typed fields out of a mapping, recording every error instead of stopping at the first."""

    def __init__(self, data: Mapping[str, Any], prefix: str, errors: list[FieldError]):
        self.data, self.prefix, self.errors = data, prefix, errors

    def _fail(self, name: str, message: str) -> None:
        self.errors.append(FieldError(self.prefix + name, message))

    def text(self, name: str, max_length: int, required: bool = False) -> str | None:
        return self._checked_text(name, self.data.get(name), max_length, required)

    def identifier(self, name: str) -> str | None:
        """A required id: a string, or a whole number (Rails' integer ids) read as its digits."""
        value = self.data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif value is not None and not isinstance(value, str):  # a float too: 1e400 would become "inf"
            self._fail(name, "must be a string or a whole number")
            return None
        text = self._checked_text(name, value, MAX_ID_LENGTH, required=True)
        if text is not None and CONTROL.search(text):
            self._fail(name, "must not contain control characters (tabs, newlines and the like)")
            return None
        return text

    def _checked_text(self, name: str, value: Any, max_length: int, required: bool) -> str | None:
        if value is None:
            if required:
                self._fail(name, "is required")
            return None
        if not isinstance(value, str):
            self._fail(name, "must be a string")
            return None
        value = value.strip()
        if required and not value:
            self._fail(name, "must not be empty")
            return None
        if len(value) > max_length:
            self._fail(name, f"must be at most {max_length} characters (got {len(value)})")
            return None
        if not storable(value):
            self._fail(name, "must not contain NUL characters or lone surrogates")
            return None
        if TEXT_CONTROL.search(value):
            self._fail(name, "must not contain control characters other than tabs and line breaks")
            return None
        return value or None

    def datetime(self, name: str, required: bool = False) -> dt.datetime | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self._fail(name, "is required")
            return None
        try:
            return parse_datetime(value)
        except ValueError as exc:
            self._fail(name, str(exc))
            return None

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self.data.get(name)
        if value is None:
            self._fail(name, "is required")
            return None
        if value not in choices:
            self._fail(name, f"must be one of {', '.join(choices)}")
            return None
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(name, "must be a whole number")
            return None
        if not low <= value <= high:
            self._fail(name, f"must be between {low} and {high}")
            return None
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None or isinstance(value, bool):
            return value
        self._fail(name, "must be true or false")
        return None


def validate_session(data: Any) -> SessionRecord:
    """Check one raw session record and return it typed; raises :class:`ValidationError`."""
    if not isinstance(data, Mapping):
        raise ValidationError([FieldError("(record)", "must be a JSON object")])
    errors: list[FieldError] = []
    read = _Reader(data, "", errors)
    session_id = read.identifier("session_id")
    tutor_id = read.identifier("tutor_id")
    student_id = read.identifier("student_id")
    scheduled_time = read.datetime("scheduled_time", required=True)
    completed_time = read.datetime("completed_time")
    status = read.choice("status", STATUSES)
    fields = dict(
        tutor_name=read.text("tutor_name", MAX_NAME_LENGTH),
        student_name=read.text("student_name", MAX_NAME_LENGTH),
        subject=read.text("subject", MAX_NAME_LENGTH),
        duration_minutes=read.integer("duration_minutes", 0, MAX_DURATION_MINUTES),
        is_first_session=read.boolean("is_first_session"),
    )
    reschedule = _reschedule(data.get("reschedule_info"), status, scheduled_time, errors)
    if errors:
        raise ValidationError(errors)
    return SessionRecord(
        session_id=session_id, tutor_id=tutor_id, student_id=student_id,
        scheduled_time=scheduled_time, status=status, completed_time=completed_time,
        reschedule=reschedule, **fields,
    )


def _reschedule(
    raw: Any, status: str | None, scheduled_time: dt.datetime | None, errors: list[FieldError]
) -> RescheduleInfo | None:
    if raw is None:
        if status == "rescheduled":
            errors.append(FieldError("reschedule_info", "is required when status is rescheduled"))
        return None
    if status != "rescheduled":
        if status is not None:
            errors.append(FieldError("reschedule_info", "is only allowed when status is rescheduled"))
        return None
    if not isinstance(raw, Mapping):
        errors.append(FieldError("reschedule_info", "must be a JSON object"))
        return None
    read = _Reader(raw, "reschedule_info.", errors)
    initiator = read.choice("initiator", INITIATORS)
    reason = read.text("reason", MAX_REASON_LENGTH)
    original_time = read.datetime("original_time") or scheduled_time
    new_time = read.datetime("new_time")
    requested_at = read.datetime("requested_at")
    if initiator is None or original_time is None:
        return None
    return RescheduleInfo(
        initiator=initiator, original_time=original_time, new_time=new_time,
        reason=reason, requested_at=requested_at,
    )


def to_payload(record: SessionRecord) -> dict[str, Any]:
    """The record back in the API's JSON shape (UTC ISO times); ``validate_session`` reads it back unchanged."""
    def iso(moment: dt.datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    payload: dict[str, Any] = {
        "session_id": record.session_id, "tutor_id": record.tutor_id, "student_id": record.student_id,
        "scheduled_time": iso(record.scheduled_time), "completed_time": iso(record.completed_time),
        "status": record.status, "tutor_name": record.tutor_name, "student_name": record.student_name,
        "subject": record.subject, "duration_minutes": record.duration_minutes,
        "is_first_session": record.is_first_session,
    }
    if record.reschedule:
        info = record.reschedule
        payload["reschedule_info"] = {
            "initiator": info.initiator, "reason": info.reason, "original_time": iso(info.original_time),
            "new_time": iso(info.new_time), "requested_at": iso(info.requested_at),
        }
    return payload
