"""Process validated sessions, roll every tutor forward, or rebuild tutors from scratch.

Work is done per tutor, in one transaction that holds the lock of every tutor it touches
(``SELECT ... FOR UPDATE`` on Postgres; SQLite's ``BEGIN IMMEDIATE`` serializes writers),
so two workers scoring the same tutor keep counts exact. A batch is grouped by tutor and
each tutor is rescored once, however many of its sessions the batch holds. Re-processing
an identical payload changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import peewee
import pluggy

from engine.config import Settings
from engine.db import is_postgres, take_new_values, write_transaction
from engine.models import Reschedule, Session, Tutor
from engine.scoring import clear_derived, first_session_day, recount_all_days, recount_days, score_tutor
from engine.validation import SessionRecord
from engine.windows import day_of

SessionIdsHook = Callable[[list[str]], None]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BatchFailed(RuntimeError):
    """Some tutors of a batch could not be scored; every other tutor's sessions were committed.

    ``results`` holds the sessions that were processed, ``failures`` the error per tutor id.
    """

    def __init__(self, results: list[ProcessResult], failures: dict[str, Exception]):
        self.results, self.failures = results, failures
        tutor_id, error = next(iter(failures.items()))
        super().__init__(f"{len(failures)} tutor(s) failed, e.g. {tutor_id}: {type(error).__name__}: {error}")


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
    """Store one session and its reschedule, then rescore its tutor, in one transaction."""
    try:
        return process_batch(database, pm, settings, [record], now)[0]
    except BatchFailed as failed:
        raise failed.failures[record.tutor_id] from None


def process_batch(
    database: peewee.Database, pm: pluggy.PluginManager, settings: Settings, records: Sequence[SessionRecord],
    now: dt.datetime | None = None, on_stored: SessionIdsHook | None = None,
    still_current: Callable[[list[str]], set[str]] | None = None,
) -> list[ProcessResult]:
    """Process many sessions, one transaction per tutor; a session listed twice counts once (the last wins).

    A tutor that fails does not stop the others: :class:`BatchFailed` is raised at the end.
    Both hooks run inside each tutor's transaction, after its locks are taken:
    ``still_current(session_ids)`` says which records to apply (a newer delivery of a session
    may have been applied meanwhile); ``on_stored(session_ids)`` does bookkeeping, such as
    marking inbox rows processed, that must commit (or roll back) with the scores.
    """
    now = now or utc_now()
    latest = {record.session_id: record for record in records}
    by_tutor: dict[str, list[SessionRecord]] = {}
    for record in latest.values():
        by_tutor.setdefault(record.tutor_id, []).append(record)
    results: dict[str, ProcessResult] = {}
    failures: dict[str, Exception] = {}
    for tutor_id in sorted(by_tutor):
        try:
            for result in _process_tutor(database, pm, settings, tutor_id, by_tutor[tutor_id], now, on_stored,
                                         still_current):
                results[result.session_id] = result
        except Exception as exc:
            failures[tutor_id] = exc
    done = [results[record.session_id] for record in records if record.session_id in results]
    if failures:
        raise BatchFailed(done, failures)
    return done


def _process_tutor(
    database: peewee.Database, pm: pluggy.PluginManager, settings: Settings, tutor_id: str,
    records: list[SessionRecord], now: dt.datetime, on_stored: SessionIdsHook | None,
    still_current: Callable[[list[str]], set[str]] | None,
) -> list[ProcessResult]:
    with write_transaction(database):
        # Lock order, the same in every transaction so none can deadlock: the sessions (Postgres advisory
        # locks; SQLite already serializes writers), then every tutor involved, sorted.
        _lock_sessions(database, [record.session_id for record in records])
        previous = _stored_sessions([record.session_id for record in records])
        tutors = _lock_tutors(sorted({tutor_id} | {row.tutor_id for row in previous.values()}), now)
        skipped: list[SessionRecord] = []
        if still_current:
            current = still_current([record.session_id for record in records])
            skipped = [record for record in records if record.session_id not in current]
            records = [record for record in records if record.session_id in current]
        tutor = tutors[tutor_id]
        names = [record.tutor_name for record in records if record.tutor_name]
        if names and tutor.name != names[-1]:
            tutor.name = names[-1]
            tutor.save()
        digests = {record.session_id: fingerprint(record) for record in records}
        changed = [r for r in records if r.session_id not in previous or previous[r.session_id].fingerprint
                   != digests[r.session_id]]
        if changed:
            _store(changed, digests, previous, now)
            touched: dict[str, set[dt.date]] = {tutor_id: {day_of(r.scheduled_time) for r in changed}}
            for record in changed:
                if record.session_id in previous:
                    old = previous[record.session_id]
                    touched.setdefault(old.tutor_id, set()).add(day_of(old.scheduled_time))
            for owner, days in sorted(touched.items()):
                recount_days(owner, days)
                score_tutor(pm, settings, tutors[owner], min(days), now)
        if on_stored and records:
            on_stored([record.session_id for record in records])
        changed_ids = {r.session_id for r in changed}
        return [ProcessResult(r.session_id, tutor_id, r.session_id in changed_ids, tutor.flagged)
                for r in records + skipped]


def _lock_sessions(database: peewee.Database, session_ids: list[str]) -> None:
    """On Postgres, serialize on each session id, so one new session posted under two tutors at once
    ends up counted under exactly one of them."""
    if is_postgres(database):
        database.execute_sql(
            # ordered by the lock key itself, so every transaction takes them in one order
            "SELECT pg_advisory_xact_lock(key) "
            "FROM (SELECT DISTINCT hashtext(unnest(%s::text[])) AS key ORDER BY 1) AS keys",
            (list(set(session_ids)),),
        )


def _lock_tutors(tutor_ids: list[str], now: dt.datetime) -> dict[str, Tutor]:
    """Create missing tutors and lock them, in one statement: an upsert takes the row lock on Postgres
    (SQLite's BEGIN IMMEDIATE already serializes writers). Ids are locked in sorted order."""
    rows = [{"tutor_id": tutor_id, "created_at": now} for tutor_id in sorted(tutor_ids)]
    query = (
        Tutor.insert_many(rows)
        .on_conflict(conflict_target=[Tutor.tutor_id], update={Tutor.tutor_id: peewee.EXCLUDED.tutor_id})
        .returning(Tutor)
    )
    return {tutor.tutor_id: tutor for tutor in query.execute()}


def _stored_sessions(session_ids: list[str]) -> dict[str, Session]:
    return {row.session_id: row for row in Session.select().where(Session.session_id.in_(session_ids))}


def _store(
    records: list[SessionRecord], digests: dict[str, str], previous: dict[str, Session], now: dt.datetime
) -> None:
    sessions = [
        dict(
            session_id=r.session_id, tutor=r.tutor_id, student_id=r.student_id, student_name=r.student_name,
            scheduled_time=r.scheduled_time, completed_time=r.completed_time, status=r.status, subject=r.subject,
            duration_minutes=r.duration_minutes, is_first_session=r.is_first_session,
            fingerprint=digests[r.session_id], updated_at=now,
            received_at=previous[r.session_id].received_at if r.session_id in previous else now,
        )
        for r in records
    ]
    update = take_new_values(Session, [n for n in sessions[0] if n not in ("session_id", "received_at")])
    Session.insert_many(sessions).on_conflict(conflict_target=[Session.session_id], update=update).execute()
    without = [r.session_id for r in records if r.reschedule is None]
    if without:
        Reschedule.delete().where(Reschedule.session.in_(without)).execute()
    reschedules = [_reschedule_row(r) for r in records if r.reschedule is not None]
    if reschedules:
        update = take_new_values(Reschedule, [n for n in reschedules[0] if n != "session"])
        Reschedule.insert_many(reschedules).on_conflict(conflict_target=[Reschedule.session], update=update).execute()


def _reschedule_row(record: SessionRecord) -> dict:
    info = record.reschedule
    notice, delay = info.notice, info.delay
    return dict(
        session=record.session_id, tutor=record.tutor_id, initiator=info.initiator, reason=info.reason,
        original_time=info.original_time, new_time=info.new_time, requested_at=info.requested_at,
        notice_seconds=None if notice is None else int(notice.total_seconds()),
        delay_seconds=None if delay is None else int(delay.total_seconds()),
    )


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
            tutor = _lock_tutors([tutor_id], now)[tutor_id]
            if rebuild:
                clear_derived(tutor_id)
                recount_all_days(tutor_id)
                tutor.series_through = None
            start = tutor.series_through or first_session_day(tutor_id) or day_of(now)
            score_tutor(pm, settings, tutor, start, now, snapshot_through_today=True)
        if progress:
            progress(done, len(tutor_ids))
    return len(tutor_ids)
