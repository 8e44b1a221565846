"""Store a batch of sessions in one short transaction, and mark their tutors as waiting for a rescore.

Storing does no scoring: it writes the sessions and their reschedules, moves the per-day
counts by exactly what changed (a new session adds, a changed one swaps its old counts for
its new ones), and upserts each touched tutor into ``rescore_waiting`` with the earliest day
touched. :mod:`engine.rescoring` does the rest, once per tutor however many sessions arrived.
When per-session email reports are on, each new or changed session also gets its report row
here (sent after the rescore), so an accepted session's report is never lost.

Concurrency: sessions are serialized by Postgres advisory locks taken in key order (SQLite's
``BEGIN IMMEDIATE`` serializes writers), and every multi-row write goes in sorted key order,
so two batches never deadlock and counts stay exact. An identical re-delivery writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import peewee

from engine.config import SESSION_REPORT_POLICIES, Settings
from engine.db import write_transaction
from engine.personal import personal_data
from engine.services import Services
from engine.sql import Sql, flatten, from_db_time, to_db_day, to_db_json, to_db_time
from engine.validation import SessionRecord
from engine.windows import COUNT_FIELDS, TOTALS, Counts, day_of, session_counts

SESSION_LOCKS = 7_311_943  # the advisory-lock namespace (first key) of session ids, apart from other locks


@dataclass(frozen=True)
class StoredSession:
    """One record of a batch: stored new or changed (``changed``), or identical to what was stored."""

    session_id: str
    tutor_id: str
    changed: bool


@dataclass(frozen=True)
class _Previous:
    tutor_id: str
    scheduled_time: dt.datetime
    counts: Counts
    fingerprint: str
    received_at: dt.datetime
    had_reschedule: bool


def fingerprints(record: SessionRecord) -> tuple[str, ...]:
    """Keyed digests of everything in the record, so an identical re-delivery is recognised: the first under the
    current secret key (stored), then under the older ones (a re-post after a key rotation is still identical).
    Keyed, since the record holds the student's name: a plain hash could be checked against guessed names."""
    canonical = json.dumps(dataclasses.asdict(record), default=str, sort_keys=True, separators=(",", ":"))
    return personal_data.fingerprints(canonical)


def latest_per_session(records: Iterable[SessionRecord]) -> list[SessionRecord]:
    """A session listed twice counts once: the last record of it wins."""
    return list({record.session_id: record for record in records}.values())


def store_sessions(services: Services, records: Sequence[SessionRecord]) -> list[StoredSession]:
    """Store a batch in one transaction (a session listed twice: the last wins); returns one entry per session."""
    records = latest_per_session(records)
    with write_transaction(services.database):
        lock_sessions(services.database, [record.session_id for record in records])
        return store_locked(services.database, records, services.clock(), report_recipients(services.settings))


def report_recipients(settings: Settings) -> tuple[str, ...]:
    """Who gets a report of each stored session: nobody unless the email policy reports sessions."""
    return settings.email_to if settings.email_policy in SESSION_REPORT_POLICIES else ()


def lock_sessions(database: peewee.Database, session_ids: Sequence[str]) -> None:
    """On Postgres, serialize on each session id, so one new session posted under two tutors at once
    ends up counted under exactly one of them (SQLite already serializes writers)."""
    sql = Sql(database)
    if sql.postgres and session_ids:
        sql.run(  # ordered by the lock key itself, so every transaction takes them in one order
            "SELECT pg_advisory_xact_lock({p}, key) "
            "FROM (SELECT DISTINCT hashtext(unnest({p}::text[])) AS key ORDER BY 1) AS keys",
            (SESSION_LOCKS, list(set(session_ids))),
        )


def store_locked(database: peewee.Database, records: Sequence[SessionRecord], now: dt.datetime,
                 report_to: Sequence[str] = ()) -> list[StoredSession]:
    """Store ``records`` (one per session) inside the caller's transaction, their session locks held;
    with ``report_to``, add a report for each new or changed session, addressed to them."""
    if not records:
        return []
    sql = Sql(database)
    previous = _previous(sql, [record.session_id for record in records])
    keyed = {record.session_id: fingerprints(record) for record in records}
    digests = {session_id: found[0] for session_id, found in keyed.items()}
    changed = [r for r in records
               if r.session_id not in previous or previous[r.session_id].fingerprint not in keyed[r.session_id]]
    if changed:
        moves = _count_moves(changed, previous)
        _upsert_tutors(sql, changed, previous, now, moves)
        _upsert_sessions(sql, changed, digests, previous, now)
        _write_reschedules(sql, changed, previous)
        touched = _move_counts(sql, moves)
        mark_waiting(sql, touched, now)
        if report_to:
            _add_session_reports(sql, changed, digests, previous, report_to, now)
    changed_ids = {record.session_id for record in changed}
    return [StoredSession(r.session_id, r.tutor_id, r.session_id in changed_ids) for r in records]


def _previous(sql: Sql, session_ids: list[str]) -> dict[str, _Previous]:
    rows = sql.all(
        "SELECT s.session_id, s.tutor_id, s.scheduled_time, s.status, s.is_first_session, s.fingerprint, "
        "s.received_at, r.initiator FROM sessions s LEFT JOIN reschedules r ON r.session_id = s.session_id "
        f"WHERE s.session_id IN ({sql.marks(len(session_ids))})",
        session_ids,
    )
    found = {}
    for session_id, tutor_id, scheduled, status, first, digest, received, initiator in rows:
        found[session_id] = _Previous(
            tutor_id, from_db_time(scheduled),
            session_counts(status, initiator, None if first is None else bool(first)),
            digest, from_db_time(received), initiator is not None,
        )
    return found


def _upsert_tutors(sql: Sql, records: list[SessionRecord], previous: dict[str, _Previous], now: dt.datetime,
                   moves: dict[tuple[str, dt.date], Counts]) -> None:
    """Create the tutors a batch names (or a moved session leaves), take the newest name given, and move
    each tutor's all-time totals by its days' moves (in this statement, not one of their own).

    On Postgres, ``ON CONFLICT DO UPDATE`` locks every conflicting row, even where its ``WHERE``
    updates nothing: the store holds each touched tutor's lock until it commits, which the
    rescore relies on. Do not turn this into ``DO NOTHING``.
    """
    names: dict[str, str | None] = {old.tutor_id: None for old in previous.values()}
    for record in records:
        names[record.tutor_id] = record.tutor_name or names.get(record.tutor_id)
    totals: dict[str, Counts] = {}
    for (tutor_id, _), delta in moves.items():
        totals[tutor_id] = totals.get(tutor_id, Counts()) + delta
    rows = [(tutor_id, names[tutor_id], False, 0.0, to_db_time(now),
             *(getattr(totals.get(tutor_id, Counts()), field) for field in TOTALS.values()))
            for tutor_id in sorted(names)]
    moved = " OR ".join(f"excluded.{column} <> 0" for column in TOTALS)
    sql.run(
        f"INSERT INTO tutors (tutor_id, name, flagged, risk_score, created_at, {', '.join(TOTALS)}) "
        f"VALUES {sql.rows(len(rows), 5 + len(TOTALS))} "
        "ON CONFLICT (tutor_id) DO UPDATE SET name = COALESCE(excluded.name, tutors.name), "
        + ", ".join(f"{column} = tutors.{column} + excluded.{column}" for column in TOTALS)
        + " WHERE (excluded.name IS NOT NULL AND (tutors.name IS NULL OR tutors.name <> excluded.name)) "
        f"OR {moved}",
        flatten(rows),
    )


_SESSION_COLUMNS = ("session_id", "tutor_id", "student_id", "student_name", "scheduled_time", "completed_time",
                    "status", "subject", "duration_minutes", "is_first_session", "fingerprint", "received_at",
                    "updated_at")


def _upsert_sessions(sql: Sql, records: list[SessionRecord], digests: dict[str, str],
                     previous: dict[str, _Previous], now: dt.datetime) -> None:
    rows = [
        (r.session_id, r.tutor_id, r.student_id, personal_data.seal(r.student_name), to_db_time(r.scheduled_time),
         to_db_time(r.completed_time),
         r.status, r.subject, r.duration_minutes, r.is_first_session, digests[r.session_id],
         to_db_time(previous[r.session_id].received_at if r.session_id in previous else now), to_db_time(now))
        for r in sorted(records, key=lambda record: record.session_id)
    ]
    updates = ", ".join(f"{name} = excluded.{name}" for name in _SESSION_COLUMNS
                        if name not in ("session_id", "received_at"))
    sql.run(
        f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)}) VALUES {sql.rows(len(rows), len(_SESSION_COLUMNS))} "
        f"ON CONFLICT (session_id) DO UPDATE SET {updates}",
        flatten(rows),
    )


_RESCHEDULE_COLUMNS = ("session_id", "tutor_id", "initiator", "reason", "original_time", "new_time", "requested_at",
                       "notice_seconds", "delay_seconds")


def _write_reschedules(sql: Sql, records: list[SessionRecord], previous: dict[str, _Previous]) -> None:
    dropped = [r.session_id for r in records
               if r.reschedule is None and r.session_id in previous and previous[r.session_id].had_reschedule]
    if dropped:
        sql.run(f"DELETE FROM reschedules WHERE session_id IN ({sql.marks(len(dropped))})", dropped)
    rows = [_reschedule_row(r) for r in sorted(records, key=lambda record: record.session_id) if r.reschedule]
    if rows:
        updates = ", ".join(f"{name} = excluded.{name}" for name in _RESCHEDULE_COLUMNS if name != "session_id")
        sql.run(
            f"INSERT INTO reschedules ({', '.join(_RESCHEDULE_COLUMNS)}) "
            f"VALUES {sql.rows(len(rows), len(_RESCHEDULE_COLUMNS))} "
            f"ON CONFLICT (session_id) DO UPDATE SET {updates}",
            flatten(rows),
        )


def _reschedule_row(record: SessionRecord) -> tuple:
    info = record.reschedule
    notice, delay = info.notice, info.delay
    return (record.session_id, record.tutor_id, info.initiator, personal_data.seal(info.reason),
            to_db_time(info.original_time),
            to_db_time(info.new_time), to_db_time(info.requested_at),
            None if notice is None else int(notice.total_seconds()),
            None if delay is None else int(delay.total_seconds()))


def _count_moves(records: list[SessionRecord], previous: dict[str, _Previous]) -> dict[tuple[str, dt.date], Counts]:
    """What the batch moves on each (tutor, day): each new version's counts added to its day and the old
    version's taken off its day."""
    deltas: dict[tuple[str, dt.date], Counts] = {}
    for record in records:
        key = (record.tutor_id, day_of(record.scheduled_time))
        initiator = record.reschedule.initiator if record.reschedule else None
        deltas[key] = deltas.get(key, Counts()) + session_counts(record.status, initiator, record.is_first_session)
        old = previous.get(record.session_id)
        if old is not None:
            key = (old.tutor_id, day_of(old.scheduled_time))
            deltas[key] = deltas.get(key, Counts()) - old.counts
    return deltas


def _move_counts(sql: Sql, deltas: dict[tuple[str, dt.date], Counts]) -> dict[str, dt.date]:
    """Apply the moves to the daily counts, in one upsert; returns the earliest day touched per tutor.

    Adding to the stored value (not overwriting it) keeps counts exact when two batches touch the same
    tutor-day at once.
    """
    touched: dict[str, dt.date] = {}
    for tutor_id, day in deltas:
        touched[tutor_id] = min(day, touched.get(tutor_id, day))
    moves = sorted((key, delta) for key, delta in deltas.items() if any(delta))
    if moves:
        rows = [(tutor_id, to_db_day(day), *delta) for (tutor_id, day), delta in moves]
        updates = ", ".join(f"{name} = tutor_daily_counts.{name} + excluded.{name}" for name in COUNT_FIELDS)
        sql.run(
            f"INSERT INTO tutor_daily_counts (tutor_id, day, {', '.join(COUNT_FIELDS)}) "
            f"VALUES {sql.rows(len(rows), 2 + len(COUNT_FIELDS))} "
            f"ON CONFLICT (tutor_id, day) DO UPDATE SET {updates}",
            flatten(rows),
        )
        for (tutor_id, day), delta in moves:
            if delta.sessions < 0:  # a session left this day: drop the day if nothing is left on it
                sql.run("DELETE FROM tutor_daily_counts WHERE tutor_id = {p} AND day = {p} AND sessions = 0",
                        (tutor_id, to_db_day(day)))
    return touched


def _add_session_reports(sql: Sql, records: list[SessionRecord], digests: dict[str, str],
                         previous: dict[str, _Previous], report_to: Sequence[str], now: dt.datetime) -> None:
    """One report per change of a session: keyed by the version stored and the one it replaced, so a change
    back to an earlier version is news again, while a retried store finds the key taken."""
    rows = []
    for r in sorted(records, key=lambda record: record.session_id):
        replaced = previous[r.session_id].fingerprint if r.session_id in previous else "new"
        key = f"session:{r.session_id}:{digests[r.session_id]}:{replaced}"
        rows.append(("session", key, r.session_id, r.tutor_id, digests[r.session_id], to_db_json(list(report_to)),
                     "pending", 0, to_db_time(now)))
    sql.run(
        "INSERT INTO email_reports (kind, report_key, session_id, tutor_id, fingerprint, recipients, status, "
        f"attempts, created_at) VALUES {sql.rows(len(rows), 9)} ON CONFLICT (report_key) DO NOTHING",
        flatten(rows),
    )


def mark_waiting(sql: Sql, earliest: dict[str, dt.date], now: dt.datetime) -> None:
    """Upsert tutors into ``rescore_waiting``, keeping the earliest day and the first wait.

    The caller holds these tutors' row locks (taken by :func:`_upsert_tutors`): that is what keeps a
    rescore, which holds the same lock, from missing this change (see :mod:`engine.rescoring`).
    """
    if not earliest:
        return
    rows = [(tutor_id, to_db_day(day), to_db_time(now), 0) for tutor_id, day in sorted(earliest.items())]
    sql.run(
        "INSERT INTO rescore_waiting (tutor_id, from_day, waiting_since, attempts) "
        f"VALUES {sql.rows(len(rows), 4)} ON CONFLICT (tutor_id) DO UPDATE SET "
        f"from_day = {sql.least}(rescore_waiting.from_day, excluded.from_day)",
        flatten(rows),
    )
