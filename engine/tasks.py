"""Queue tasks: store inbox rows (with retries and backoff), rescore waiting tutors, roll every tutor forward,
and (from :mod:`notifications.tasks`) the email reports that follow a rescore.

Tasks carry inbox ids only; the records themselves are in the database, so a lost task
loses nothing (the sweeper re-enqueues). After storing, a task rescores the tutors that
are due: at once when no other scoring task is queued, otherwise only those that have waited
``TQS_RESCORE_DELAY_SECONDS``, or ``TQS_RESCORE_MAX_DELAY_SECONDS`` while a backfill is being stored
(longer for changes further back, which cost more to rescore), so a tutor's sessions arriving in many
batches are rescored together: about once per backfill. Every event logs one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from huey import Huey, crontab
from huey.api import TaskWrapper

from engine import inbox
from engine.logs import log_event
from engine.models import InboxItem
from engine.queue import SCORING_PRIORITY, scoring_tasks_queued
from engine.rescoring import coalescing_delay, rescore_all, rescore_waiting, sessions_accepted_after
from engine.rulestore import rescore_after_change
from engine.services import Services
from notifications.tasks import EmailTasks, register_email_tasks

RETRIES = 3
RETRY_DELAY_SECONDS = 2  # then 4, then 8
ENQUEUE_CHUNK = inbox.MAX_BATCH  # one task per API batch
RESCORE_BUDGET_SECONDS = 1.0  # then the task yields to queued batches, and a follow-up task goes on
logger = logging.getLogger("tutor_quality.worker")


@dataclass(frozen=True)
class Tasks:
    huey: Huey
    store_inbox: TaskWrapper
    rescore_waiting: TaskWrapper
    rescore_all: TaskWrapper
    rescore_settings_change: TaskWrapper
    emails: EmailTasks
    services: Services

    def queue_settings_rescore(self, batch: int) -> bool:
        """Queue the rescore after a settings change; when the queue is down, the sweeper queues it later."""
        try:
            self.rescore_settings_change(batch)
            return True
        except Exception as exc:  # Redis down: the change is stored, and its rescore is swept later
            log_event(logger, "enqueue_failed", logging.WARNING, settings_change=batch, error=type(exc).__name__)
            return False

    def enqueue_inbox(self, ids: Sequence[int]) -> bool:
        """Queue inbox rows in chunks; when the queue is unreachable, log it, mark the rest as never
        queued (the sweeper queues them) and return False."""
        ids = list(ids)
        for start in range(0, len(ids), ENQUEUE_CHUNK):
            try:
                self.store_inbox(ids[start:start + ENQUEUE_CHUNK])
            except Exception as exc:  # Redis down, or a failure inside an immediate-mode task
                log_event(logger, "enqueue_failed", logging.WARNING, items=len(ids) - start, error=type(exc).__name__)
                with contextlib.suppress(Exception):  # the database is gone too: the rows are swept later
                    inbox.mark_enqueued(self.services.database, ids[start:], None)
                return False
        return True


def register_tasks(huey: Huey, services: Services) -> Tasks:
    """Define the tasks on ``huey``, bound to ``services``; the API and the worker both call this."""
    settings = services.settings
    lease = dt.timedelta(seconds=settings.rescore_lease_seconds)
    emails = register_email_tasks(huey, services)

    def rescore_due(stored_through: int | None) -> bool:
        """Rescore the tutors due now, within the budget; True when some due are left. Tutors not yet due are
        left to the tasks queued (each ends here), or to the sweeper. ``stored_through``: the newest inbox
        row of the batch behind this call, to tell a backfill still being stored from live posts."""
        delay = dt.timedelta(0)  # an idle queue: at once
        if scoring_tasks_queued(huey):
            behind = 0 if stored_through is None else sessions_accepted_after(services, stored_through)
            delay = coalescing_delay(behind, settings.rescore_delay_seconds, settings.rescore_max_delay_seconds)
        outcome = rescore_waiting(services, delay=delay, budget_seconds=RESCORE_BUDGET_SECONDS, lease=lease)
        for done in outcome.rescored:
            log_event(logger, "tutor_rescored", tutor_id=done.tutor_id, flagged=done.flagged, days=done.days,
                      waited_ms=1000 * done.waited_seconds, ms=done.ms)
        for tutor_id, error in outcome.failures.items():
            log_event(logger, "rescore_failed", logging.ERROR, tutor_id=tutor_id, error=type(error).__name__,
                      message=str(error)[:200])
        emails.after_rescore(done.tutor_id for done in outcome.rescored)
        return outcome.more_waiting

    @huey.task(retries=RETRIES, retry_delay=RETRY_DELAY_SECONDS, retry_backoff=2, context=True, name="store_inbox",
               priority=SCORING_PRIORITY)
    def store_inbox(ids: list[int], task=None) -> int:
        attempt = RETRIES - task.retries + 1 if task is not None else 1
        started = time.perf_counter()
        try:
            outcome = inbox.store_items(services, ids)
        except Exception as exc:  # the database is down, say: nothing of this batch was stored
            return _failed_attempt(services, ids, exc, attempt, final=task is None or task.retries == 0)
        per_session_ms = 1000 * (time.perf_counter() - started) / max(len(outcome.stored), 1)
        for item, stored in outcome.stored:
            log_event(logger, "session_stored", session_id=item.session_id, tutor_id=item.tutor_id,
                      changed=stored.changed, attempt=attempt, ms=per_session_ms)
        for item in outcome.invalid:
            log_event(logger, "session_failed", logging.ERROR, session_id=item.session_id, tutor_id=item.tutor_id,
                      attempt=attempt, error="ValidationError")
        newest = max(ids, default=None)
        if rescore_due(newest):
            rescore_waiting_task(newest)
        return len(outcome.stored)

    @huey.task(name="rescore_waiting", priority=SCORING_PRIORITY)
    def rescore_waiting_task(stored_through: int | None = None) -> None:
        if rescore_due(stored_through):
            rescore_waiting_task(stored_through)

    @huey.periodic_task(crontab(minute="5"), name="rescore_all", priority=SCORING_PRIORITY)
    def rescore_all_task() -> int:
        started = time.perf_counter()
        count = rescore_all(services)
        log_event(logger, "rescored", tutors=count, ms=1000 * (time.perf_counter() - started))
        return count

    @huey.task(name="rescore_settings_change", priority=SCORING_PRIORITY)
    def rescore_settings_change_task(batch: int) -> int:
        started = time.perf_counter()
        done = rescore_after_change(services, batch)
        emails.after_rescore(done.changed)
        log_event(logger, "settings_change_rescored", settings_change=batch, tutors=done.tutors,
                  flags_changed=len(done.changed), ms=1000 * (time.perf_counter() - started))
        return done.tutors

    return Tasks(huey, store_inbox, rescore_waiting_task, rescore_all_task, rescore_settings_change_task, emails,
                 services)


def _failed_attempt(services: Services, ids: Sequence[int], error: Exception, attempt: int, final: bool) -> int:
    """Count the attempt on the rows still pending, log each, and raise to retry unless it was the last."""
    message = f"{type(error).__name__}: {error}"[:2000]
    inbox.record_attempt(services.database, ids, message, failed=final)
    for item in _pending(services, ids):
        log_event(logger, "session_failed" if final else "session_attempt_failed", logging.ERROR,
                  session_id=item.session_id, tutor_id=item.tutor_id, attempt=attempt, error=type(error).__name__)
    if final:
        return 0
    raise RuntimeError(f"retrying: {message}")


def _pending(services: Services, ids: Sequence[int]) -> list[InboxItem]:
    with services.database.connection_context():
        unfinished = InboxItem.id.in_(list(ids)) & InboxItem.status.in_(["pending", "failed"])
        return list(InboxItem.select().where(unfinished))
