"""The inbox: accepted session records stored before they are queued, so none is ever lost.

The API validates a whole batch (all or nothing), stores it here in one transaction and
only then enqueues it. A worker scores pending rows and marks them processed in the same
transaction; the sweeper re-enqueues rows nobody finished; failed rows wait for
``tqs retry-failed``. Scoring is idempotent, so a second delivery is harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee
import pluggy

from engine.config import Settings
from engine.db import write_transaction
from engine.models import InboxItem
from engine.pipeline import BatchFailed, ProcessResult, process_batch
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
    """Store validated records in one transaction; returns their inbox ids in order."""
    rows = [  # the validated record, not the raw body: unknown fields (however deeply nested) are dropped
        dict(session_id=record.session_id, tutor_id=record.tutor_id, payload=to_payload(record), received_at=now)
        for record in records
    ]
    with write_transaction(database):  # RETURNING: Postgres, and SQLite from 3.35
        # ids ascend in insertion order; RETURNING itself promises no order, so sort
        return sorted(row.id for row in InboxItem.insert_many(rows).returning(InboxItem.id).execute())


def mark_enqueued(database: peewee.Database, ids: Iterable[int], now: dt.datetime) -> None:
    with write_transaction(database):
        InboxItem.update(enqueued_at=now).where(InboxItem.id.in_(list(ids))).execute()


@dataclass(frozen=True)
class Processed:
    """What a pass over inbox rows did: the rows scored, and the error per tutor that could not be."""

    scored: list[tuple[InboxItem, ProcessResult]]
    failures: dict[str, Exception]


def process_items(
    database: peewee.Database, pm: pluggy.PluginManager, settings: Settings, ids: Sequence[int], now: dt.datetime,
) -> Processed:
    """Score the still-pending rows among ``ids``; a row of a session that has a newer row is superseded.

    Which row is newest is decided inside each tutor's transaction, after its locks, so an older
    delivery processed late never overwrites a newer one.
    """
    with database.connection_context():
        items = list(InboxItem.select().where(InboxItem.id.in_(list(ids)) & (InboxItem.status == "pending"))
                     .order_by(InboxItem.id))
        if not items:
            return Processed([], {})
        by_session = {item.session_id: item for item in items}  # the newest row of each session in this batch
        _supersede(database, [item.id for item in items if by_session[item.session_id] is not item], now)
        superseded: set[str] = set()

        def still_current(session_ids: list[str]) -> set[str]:
            newest = dict(
                InboxItem.select(InboxItem.session_id, peewee.fn.MAX(InboxItem.id))
                .where(InboxItem.session_id.in_(session_ids))
                .group_by(InboxItem.session_id)
                .tuples()
            )
            current = {sid for sid in session_ids if newest[sid] == by_session[sid].id}
            stale = [by_session[sid].id for sid in session_ids if sid not in current]
            superseded.update(sid for sid in session_ids if sid not in current)
            if stale:
                InboxItem.update(status="superseded", processed_at=now).where(InboxItem.id.in_(stale)).execute()
            return current

        def mark_processed(session_ids: list[str]) -> None:
            done = [by_session[session_id].id for session_id in session_ids]
            InboxItem.update(status="processed", processed_at=now).where(InboxItem.id.in_(done)).execute()

        live = list(by_session.values())
        records = [validate_session(item.payload) for item in live]
        try:
            results = process_batch(database, pm, settings, records, now, on_stored=mark_processed,
                                    still_current=still_current)
            failures: dict[str, Exception] = {}
        except BatchFailed as failed:
            results, failures = failed.results, failed.failures
        by_id = {result.session_id: result for result in results}
        scored = [(item, by_id[item.session_id]) for item in live
                  if item.session_id in by_id and item.session_id not in superseded]
        return Processed(scored, failures)


def _supersede(database: peewee.Database, ids: list[int], now: dt.datetime) -> None:
    if ids:
        with write_transaction(database):
            InboxItem.update(status="superseded", processed_at=now).where(InboxItem.id.in_(ids)).execute()


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


def reset_failed(database: peewee.Database) -> list[int]:
    """Put failed rows back to pending (``tqs retry-failed``); returns their ids."""
    with write_transaction(database):
        ids = [row.id for row in InboxItem.select(InboxItem.id).where(InboxItem.status == "failed")]
        if ids:
            InboxItem.update(status="pending", enqueued_at=None, attempts=0).where(InboxItem.id.in_(ids)).execute()
    return ids
