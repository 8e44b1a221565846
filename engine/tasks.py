"""Queue tasks: score inbox rows (with retries and backoff) and roll every tutor forward hourly.

Tasks carry inbox ids only; the records themselves are in the database, so a lost task
loses nothing (the sweeper re-enqueues). Every attempt, success and final failure logs
one line per session.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import peewee
from huey import Huey, crontab
from huey.api import TaskWrapper

from engine import inbox
from engine.logs import log_event
from engine.models import InboxItem
from engine.pipeline import rescore_all, utc_now
from engine.services import Services

RETRIES = 3
RETRY_DELAY_SECONDS = 2  # then 4, then 8
ENQUEUE_CHUNK = inbox.MAX_BATCH  # one task per API batch: a tutor's sessions in it are scored in one go
logger = logging.getLogger("tutor_quality.worker")


@dataclass(frozen=True)
class Tasks:
    huey: Huey
    process_inbox: TaskWrapper
    rescore: TaskWrapper
    database: peewee.Database
    clock: Callable[[], dt.datetime]

    def enqueue_inbox(self, ids: Sequence[int]) -> bool:
        """Queue inbox rows in chunks; False (and logged) when the queue is unreachable: they stay pending."""
        ids = list(ids)
        for start in range(0, len(ids), ENQUEUE_CHUNK):
            chunk = ids[start:start + ENQUEUE_CHUNK]
            try:
                self.process_inbox(chunk)
            except Exception as exc:  # Redis down, or a failure inside an immediate-mode task
                log_event(logger, "enqueue_failed", logging.WARNING, items=len(ids) - start, error=type(exc).__name__)
                return False
            inbox.mark_enqueued(self.database, chunk, self.clock())
        return True


def register_tasks(huey: Huey, services: Services, clock: Callable = utc_now) -> Tasks:
    """Define the tasks on ``huey``, bound to ``services``; the API and the worker both call this."""
    database, pm, settings = services.database, services.pm, services.settings

    @huey.task(retries=RETRIES, retry_delay=RETRY_DELAY_SECONDS, retry_backoff=2, context=True, name="process_inbox")
    def process_inbox(ids: list[int], task=None) -> int:
        attempt = RETRIES - task.retries + 1 if task is not None else 1
        started = time.perf_counter()
        try:
            outcome = inbox.process_items(database, pm, settings, ids, clock())
        except Exception as exc:  # the database is down, say: nothing of this batch was scored
            outcome = inbox.Processed([], {"*": exc})
        elapsed_ms = 1000 * (time.perf_counter() - started)
        for item, result in outcome.scored:
            log_event(logger, "session_scored", session_id=item.session_id, tutor_id=item.tutor_id,
                      changed=result.changed, flagged=result.flagged, attempt=attempt,
                      ms=elapsed_ms / max(len(outcome.scored), 1))
        if not outcome.failures:
            return len(outcome.scored)
        error = next(iter(outcome.failures.values()))
        final = task is None or task.retries == 0
        message = f"{type(error).__name__}: {error}"[:2000]
        inbox.record_attempt(database, ids, message, failed=final)
        for item in _pending(database, ids):
            log_event(logger, "session_failed" if final else "session_attempt_failed", logging.ERROR,
                      session_id=item.session_id, tutor_id=item.tutor_id, attempt=attempt,
                      error=type(outcome.failures.get(item.tutor_id, error)).__name__)
        if final:
            return len(outcome.scored)
        raise RuntimeError(f"retrying: {message}")

    @huey.periodic_task(crontab(minute="5"), name="rescore_all")
    def rescore() -> int:
        started = time.perf_counter()
        count = rescore_all(database, pm, settings, clock())
        log_event(logger, "rescored", tutors=count, ms=1000 * (time.perf_counter() - started))
        return count

    return Tasks(huey, process_inbox, rescore, database, clock)


def _pending(database, ids: Sequence[int]) -> list[InboxItem]:
    with database.connection_context():
        unfinished = InboxItem.id.in_(list(ids)) & InboxItem.status.in_(["pending", "failed"])
        return list(InboxItem.select().where(unfinished))
