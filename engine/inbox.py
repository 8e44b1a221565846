"""The inbox: accepted session records stored before they are queued, so none is ever lost.

The API validates a whole batch (all or nothing), stores it here in one transaction and
only then enqueues it. A worker stores pending rows and marks them processed in the same
transaction (their tutors are rescored after); the sweeper re-enqueues rows nobody finished;
failed rows wait for ``tqs retry-failed``. Storing is idempotent, so a second delivery is harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from engine.db import write_transaction
from engine.models import InboxItem
from engine.personal import UnreadableSecret, personal_data
from engine.services import Services
from engine.sql import Sql, from_db_json, to_db_time
from engine.storing import StoredSession, lock_sessions, report_recipients, store_locked
from engine.validation import SessionRecord, ValidationError, to_payload, validate_session

MAX_BATCH = 1000


@dataclass(frozen=True)
class RecordError:
    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class RejectedBatch(ValueError):
    """Some records failed validation; nothing of the batch was stored."""

    def __init__(self, errors: list[RecordError]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s), e.g. {errors[0].field}: {errors[0].message}")


def validate_batch(items: Sequence[Any], indexed: bool) -> list[SessionRecord]:
    """Every record valid, or :class:`RejectedBatch` naming each bad field (with its index in an array)."""
    if indexed and not 1 <= len(items) <= MAX_BATCH:
        raise RejectedBatch([RecordError(None, "(body)", f"an array must hold 1 to {MAX_BATCH} session records")])
    records: list[SessionRecord] = []
    errors: list[RecordError] = []
    for index, item in enumerate(items):
        try:
            records.append(validate_session(item))
        except ValidationError as exc:
            errors += [RecordError(index if indexed else None, e.field, e.message) for e in exc.errors]
    if errors:
        raise RejectedBatch(errors)
    return records


def accept(database: peewee.Database, records: Sequence[SessionRecord], now: dt.datetime) -> list[int]:
    """Store validated records in one transaction; returns their inbox ids in order.

    Rows are stamped as enqueued now, since the caller enqueues them right after the commit;
    if that fails it calls :func:`mark_unqueued`, and the sweeper queues them.
    """
    rows = [  # the validated record, not the raw body: unknown fields (however deeply nested) are dropped
        dict(session_id=record.session_id, tutor_id=record.tutor_id, payload=_sealed(to_payload(record)),
             received_at=now,
             enqueued_at=now)
        for record in records
    ]
    with write_transaction(database):  # RETURNING: Postgres, and SQLite from 3.35
        # ids ascend in insertion order; RETURNING itself promises no order, so sort
        return sorted(row.id for row in InboxItem.insert_many(rows).returning(InboxItem.id).execute())


def _sealed(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its personal data (the student's name, the reason) sealed for storing."""
    return _personal_fields(payload, personal_data.seal)


def _opened(payload: dict[str, Any]) -> dict[str, Any]:
    return _personal_fields(payload, personal_data.open)


def _personal_fields(payload: dict[str, Any], convert: Callable[[str | None], str | None]) -> dict[str, Any]:
    changed = {**payload, "student_name": convert(payload.get("student_name"))}
    if isinstance(payload.get("reschedule_info"), dict):
        changed["reschedule_info"] = {**payload["reschedule_info"],
                                      "reason": convert(payload["reschedule_info"].get("reason"))}
    return changed


def mark_enqueued(database: peewee.Database, ids: Iterable[int], now: dt.datetime | None) -> None:
    """Stamp rows as queued at ``now`` (the sweeper, before re-queueing), or as never queued (``None``)."""
    with write_transaction(database):
        InboxItem.update(enqueued_at=now).where(InboxItem.id.in_(list(ids))).execute()


@dataclass(frozen=True)
class PendingItem:
    """An inbox row being stored."""

    id: int
    session_id: str
    tutor_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredItems:
    """What storing some inbox rows did: the rows stored (with whether each changed anything), how many were
    superseded by a newer delivery, and rows whose stored payload no longer validates (parked as failed)."""

    stored: list[tuple[PendingItem, StoredSession]]
    superseded: int
    invalid: list[PendingItem]


def store_items(services: Services, ids: Sequence[int]) -> StoredItems:
    """Store the still-pending rows among ``ids`` in one transaction, and mark them processed in it.

    A row of a session that has a newer row is superseded instead. Which rows are still pending,
    and which is newest, is decided after the sessions' locks are taken, so a duplicate task
    finds its rows done and an older delivery stored late never overwrites a newer one.
    """
    database, now = services.database, services.clock()
    sql = Sql(database)
    with write_transaction(database):
        rows = sql.all(f"SELECT id, session_id, tutor_id, payload FROM inbox WHERE id IN ({sql.marks(len(ids))}) "
                       "AND status = 'pending'", list(ids)) if ids else []
        if not rows:
            return StoredItems([], 0, [])
        items = [PendingItem(row_id, session_id, tutor_id, from_db_json(payload))
                 for row_id, session_id, tutor_id, payload in sorted(rows)]
        lock_sessions(database, [item.session_id for item in items])
        # A join grouped by row, not a MAX() subquery: Postgres may answer that one by walking the primary key
        # backwards from the newest row, filtering on session_id; for old rows (swept after a worker died)
        # on a table not yet analyzed, that read the whole inbox once per row (3 s for 1,000 rows of 10,000).
        current = {row_id: newest for row_id, newest in sql.all(
            "SELECT i.id, MAX(n.id) FROM inbox i JOIN inbox n ON n.session_id = i.session_id "
            f"WHERE i.id IN ({sql.marks(len(items))}) AND i.status = 'pending' GROUP BY i.id",
            [item.id for item in items])}
        items = [item for item in items if item.id in current]  # another worker may have stored them meanwhile
        stale = [item.id for item in items if current[item.id] != item.id]
        live, records, broken = [], [], []
        for item in items:
            if current[item.id] != item.id:
                continue
            try:
                records.append(validate_session(_opened(item.payload)))
                live.append(item)
            except (ValidationError, UnreadableSecret) as exc:  # edited in the database, or sealed with a key
                broken.append((item, exc))  # since dropped: it will never store, so park it (and it alone)
        results = store_locked(database, records, now, report_recipients(services.settings))
        _finish(sql, [item.id for item in live], "processed", now)
        _finish(sql, stale, "superseded", now)
        for item, exc in broken:
            InboxItem.update(status="failed", last_error=f"invalid payload: {exc}"[:2000]).where(
                InboxItem.id == item.id).execute()
        return StoredItems(list(zip(live, results, strict=True)), len(stale), [item for item, _ in broken])


def _finish(sql: Sql, ids: list[int], status: str, now: dt.datetime) -> None:
    if ids:
        sql.run(f"UPDATE inbox SET status = {{p}}, processed_at = {{p}} WHERE id IN ({sql.marks(len(ids))})",
                [status, to_db_time(now), *ids])


def record_attempt(database: peewee.Database, ids: Sequence[int], error: str | None, failed: bool) -> None:
    """Count an attempt on the rows still pending; on the final failure, park them as failed with the error."""
    with write_transaction(database):
        update: dict[Any, Any] = {InboxItem.attempts: InboxItem.attempts + 1, InboxItem.last_error: error}
        if failed:
            update[InboxItem.status] = "failed"
        InboxItem.update(update).where(InboxItem.id.in_(list(ids)) & (InboxItem.status == "pending")).execute()


NEVER_ENQUEUED_GRACE = dt.timedelta(seconds=10)  # the API commits the row, then enqueues: not stuck in between


def stuck_ids(database: peewee.Database, older_than: dt.timedelta, now: dt.datetime, include_lost: bool = True,
              limit: int = 5000) -> list[int]:
    """Pending rows never enqueued (a few seconds after arrival), and, with ``include_lost``, rows enqueued
    longer ago than ``older_than`` (a worker died with them)."""
    stuck = InboxItem.enqueued_at.is_null() & (InboxItem.received_at < now - NEVER_ENQUEUED_GRACE)
    if include_lost:
        stuck |= InboxItem.enqueued_at < now - older_than
    with database.connection_context():
        query = (
            InboxItem.select(InboxItem.id)
            .where((InboxItem.status == "pending") & stuck)
            .order_by(InboxItem.id)
            .limit(limit)
        )
        return [row.id for row in query]


def reset_failed(database: peewee.Database, now: dt.datetime) -> list[int]:
    """Put failed rows back to pending, stamped as queued now (``tqs retry-failed`` queues them); returns their ids."""
    with write_transaction(database):
        ids = [row.id for row in InboxItem.select(InboxItem.id).where(InboxItem.status == "failed")]
        if ids:
            InboxItem.update(status="pending", enqueued_at=now, attempts=0).where(InboxItem.id.in_(ids)).execute()
    return ids
