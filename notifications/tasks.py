"""Queue tasks for email: prepare the reports of rescored tutors, send one report (3 retries, backoff),
and the daily digest. Scoring never waits for any of them: a failure here is recorded, not raised
into the store or rescore tasks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from huey import Huey, crontab
from huey.api import TaskWrapper

from engine.config import RESCORE_REPORT_POLICIES
from engine.logs import log_event
from engine.services import Services
from notifications import outbox
from notifications.delivery import deliver, log_delivery
from notifications.transports import SenderPool

RETRIES = 3
RETRY_BACKOFF = 2  # each retry waits twice as long as the one before: 1x, 2x, 4x TQS_EMAIL_RETRY_SECONDS
logger = logging.getLogger("tutor_quality.email")


@dataclass(frozen=True)
class EmailTasks:
    prepare_reports: TaskWrapper
    send_report: TaskWrapper
    send_digest: TaskWrapper
    services: Services

    @property
    def reports_after_rescore(self) -> bool:
        return self.services.settings.email_policy in RESCORE_REPORT_POLICIES

    def after_rescore(self, tutor_ids: Iterable[str]) -> None:
        """Queue the reports of rescored tutors; a queue that is down only delays them (the sweeper has them)."""
        tutor_ids = sorted(set(tutor_ids))
        if not tutor_ids or not self.reports_after_rescore:
            return
        try:
            self.prepare_reports(tutor_ids)
        except Exception as exc:
            log_event(logger, "email_prepare_failed", logging.WARNING, tutors=len(tutor_ids), error=type(exc).__name__)

    def queue_sends(self, report_ids: Iterable[int]) -> None:
        for report_id in report_ids:
            self.send_report(report_id)

    def sweep(self, older_than: dt.timedelta, include_lost: bool) -> outbox.SweepWork:
        """Queue what the outbox says was never prepared or never sent."""
        work = outbox.sweep(self.services, older_than, include_lost)
        if work.tutor_ids:
            self.prepare_reports(work.tutor_ids)
        self.queue_sends(work.report_ids)
        return work


def register_email_tasks(huey: Huey, services: Services) -> EmailTasks:
    """Define the email tasks on ``huey``, bound to ``services``."""
    settings = services.settings
    retry_delay = settings.email_retry_seconds
    senders = SenderPool(settings.email_endpoint)  # connects lazily, so each forked worker gets its own

    @huey.task(name="prepare_reports")
    def prepare_reports(tutor_ids: list[str]) -> int:
        report_ids = outbox.prepare_for_tutors(services, tutor_ids)
        for report_id in report_ids:
            send_report(report_id)
        log_event(logger, "email_prepared", tutors=len(tutor_ids), queued=len(report_ids))
        return len(report_ids)

    @huey.task(retries=RETRIES, retry_delay=retry_delay, retry_backoff=RETRY_BACKOFF, context=True,
               name="send_report")
    def send_report(report_id: int, task=None) -> str:
        attempt = RETRIES - task.retries + 1 if task is not None else 1
        retry_in = dt.timedelta(seconds=retry_delay * RETRY_BACKOFF ** (attempt - 1))
        try:
            done = deliver(services, report_id, retry_in, senders.open)
        except Exception as exc:
            final = task is None or task.retries == 0
            log_event(logger, "email_failed" if final else "email_attempt_failed", logging.ERROR,
                      report_id=report_id, attempt=attempt, error=type(exc).__name__, message=str(exc)[:300])
            if final:
                with contextlib.suppress(Exception):  # the database is down too: the report stays pending
                    outbox.give_up(services, report_id, f"{type(exc).__name__}: {exc}")
                return "failed"
            raise
        log_delivery(done, attempt)
        return done.status

    @huey.periodic_task(crontab(minute="*/5"), name="send_digest")
    def send_digest() -> int | None:
        """Every five minutes: once the digest hour has come (UTC), make and send today's digest, once."""
        now = services.clock()
        if settings.email_policy != "digest" or now.hour < settings.digest_hour:
            return None
        report_id = outbox.create_digest(services, now.date())
        if report_id is not None:
            log_event(logger, "digest_created", report_id=report_id)
            send_report(report_id)
        return report_id

    return EmailTasks(prepare_reports, send_report, send_digest, services)
