"""Process one validated session, roll every tutor forward, or rebuild a tutor from scratch.

Each call is one transaction that holds the lock of every tutor it touches (``SELECT ...
FOR UPDATE`` on Postgres; SQLite's ``BEGIN IMMEDIATE`` serializes writers), so two
workers scoring the same tutor keep counts exact. Re-processing an identical payload
changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import peewee
import pluggy

from engine.config import Settings
from engine.db import is_postgres, write_transaction
from engine.models import Reschedule, Session, Tutor
from engine.scoring import clear_derived, first_session_day, recount_all_days, recount_day, score_tutor
from engine.validation import SessionRecord
from engine.windows import day_of

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ConcurrentChange(RuntimeError):
    """Another worker moved this session to a different tutor mid-flight; retrying resolves it."""


@dataclass(frozen=True)
class ProcessResult:
    session_id: str
    tutor_id: str
    changed: bool
    flagged: bool


def fingerprint(record: SessionRecord) -> str:
    """A digest of everything in the record, so an identical re-delivery is recognised."""
    canonical = json.dumps(dataclasses.asdict(record), default=str, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def process_session(
    database: peewee.Database, pm: pluggy.PluginManager, settings: Settings, record: SessionRecord,
    now: dt.datetime | None = None,
) -> ProcessResult:
    """Store the session and its reschedule, then rescore its tutor, all in one transaction."""
    now = now or utc_now()
    digest = fingerprint(record)
    with write_transaction(database):
        previous = Session.get_or_none(Session.session_id == record.session_id)
        tutor_ids = sorted({record.tutor_id} | ({previous.tutor_id} if previous else set()))
        tutors = _lock_tutors(database, tutor_ids, now)
        previous = Session.get_or_none(Session.session_id == record.session_id)
        if previous and previous.tutor_id not in tutors:
            raise ConcurrentChange(f"session {record.session_id} moved to another tutor while being processed")
        tutor = tutors[record.tutor_id]
        if record.tutor_name and tutor.name != record.tutor_name:
            tutor.name = record.tutor_name
        if previous and previous.fingerprint == digest:
            if tutor.is_dirty():
                tutor.save()
            return ProcessResult(record.session_id, record.tutor_id, changed=False, flagged=tutor.flagged)
        _store(record, digest, now, received_at=previous.received_at if previous else now)
        touched = {(record.tutor_id, day_of(record.scheduled_time))}
        if previous:
            touched.add((previous.tutor_id, day_of(previous.scheduled_time)))
        for tutor_id, day in touched:
            recount_day(tutor_id, day)
        for tutor_id in tutor_ids:
            changed_from = min(day for owner, day in touched if owner == tutor_id)
            score_tutor(pm, settings, tutors[tutor_id], changed_from, now)
        return ProcessResult(record.session_id, record.tutor_id, changed=True, flagged=tutors[record.tutor_id].flagged)


def _lock_tutors(database: peewee.Database, tutor_ids: list[str], now: dt.datetime) -> dict[str, Tutor]:
    """Create missing tutors, then lock them in id order (a fixed order cannot deadlock)."""
    Tutor.insert_many([{"tutor_id": t, "created_at": now} for t in tutor_ids]).on_conflict_ignore().execute()
    query = Tutor.select().where(Tutor.tutor_id.in_(tutor_ids)).order_by(Tutor.tutor_id)
    if is_postgres(database):
        query = query.for_update()
    return {tutor.tutor_id: tutor for tutor in query}


def _store(record: SessionRecord, digest: str, now: dt.datetime, received_at: dt.datetime) -> None:
    values = dict(
        tutor=record.tutor_id, student_id=record.student_id, student_name=record.student_name,
        scheduled_time=record.scheduled_time, completed_time=record.completed_time, status=record.status,
        subject=record.subject, duration_minutes=record.duration_minutes, is_first_session=record.is_first_session,
        fingerprint=digest, updated_at=now,
    )
    Session.insert(session_id=record.session_id, received_at=received_at, **values).on_conflict(
        conflict_target=[Session.session_id], update=values
    ).execute()
    info = record.reschedule
    if info is None:
        Reschedule.delete().where(Reschedule.session == record.session_id).execute()
        return
    notice, delay = info.notice, info.delay
    reschedule = dict(
        tutor=record.tutor_id, initiator=info.initiator, reason=info.reason, original_time=info.original_time,
        new_time=info.new_time, requested_at=info.requested_at,
        notice_seconds=None if notice is None else int(notice.total_seconds()),
        delay_seconds=None if delay is None else int(delay.total_seconds()),
    )
    Reschedule.insert(session=record.session_id, **reschedule).on_conflict(
        conflict_target=[Reschedule.session], update=reschedule
    ).execute()


def rescore_all(
    database: peewee.Database, pm: pluggy.PluginManager, settings: Settings, now: dt.datetime | None = None,
    rebuild: bool = False, progress: Callable[[int, int], None] | None = None,
) -> int:
    """Roll every tutor's windows forward to ``now`` and snapshot through today (one transaction per tutor).

    With ``rebuild``, first forget everything derived and recompute from the sessions alone.
    """
    now = now or utc_now()
    with database.connection_context():
        tutor_ids = [t.tutor_id for t in Tutor.select(Tutor.tutor_id).order_by(Tutor.tutor_id)]
    for done, tutor_id in enumerate(tutor_ids, start=1):
        with write_transaction(database):
            tutor = _lock_tutors(database, [tutor_id], now)[tutor_id]
            if rebuild:
                clear_derived(tutor_id)
                recount_all_days(tutor_id)
                tutor.series_through = None
            start = tutor.series_through or first_session_day(tutor_id) or day_of(now)
            score_tutor(pm, settings, tutor, start, now, snapshot_through_today=True)
        if progress:
            progress(done, len(tutor_ids))
    return len(tutor_ids)


def process_many(
    database: peewee.Database, pm: pluggy.PluginManager, settings: Settings, records: Iterable[SessionRecord],
    clock: Clock = utc_now,
) -> list[ProcessResult]:
    """Process records one by one, each in its own transaction."""
    return [process_session(database, pm, settings, record, clock()) for record in records]
