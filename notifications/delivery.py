"""Send one report: claim it, render it as scored now, hand it to each recipient not yet served, record.

Each recipient is recorded ``sending`` before the message goes and ``sent`` after, each in its
own commit. A retry skips those sent; one left at ``sending`` (a crash in the instant between the
server accepting and the record) is sent again with the same Message-ID, so the resend is
recognisable as one: at least once, never lost, and the only possible second copy is the one
that was in flight. The claim is renewed before each recipient, so a sender whose lease lapsed
stops rather than racing the one that took over.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial

from engine import queries
from engine.logs import log_event
from engine.models import EmailReport
from engine.services import Services
from engine.terminal import ProgressHook
from notifications import outbox
from notifications.content import ReportContent, digest_report, session_report, tutor_report
from notifications.endpoint import EmailEndpoint
from notifications.render import compose, message_id, render
from notifications.transports import RecipientRefused, Sender, SenderPool, open_transport

MIN_CLAIM_LEASE = dt.timedelta(minutes=5)
IN_PROCESS_RETRY = dt.timedelta(minutes=1)
logger = logging.getLogger("tutor_quality.email")


@dataclass(frozen=True)
class Delivered:
    """What one delivery attempt did: ``status`` is sent, failed, skipped or busy (another sender has it)."""

    report_id: int
    status: str
    recipients: int = 0
    refused: int = 0
    resent: int = 0
    ms: float = 0.0


def deliver(services: Services, report_id: int, retry_in: dt.timedelta,
            transport: Callable[[], AbstractContextManager[Sender]] | None = None) -> Delivered:
    """Send the report to every recipient not yet served. A transport failure is recorded on the report and
    raised (the task retries after ``retry_in``); a recipient refused for good is recorded and skipped.
    ``transport`` opens the sender (a :class:`SenderPool`'s, to reuse a connection); default: a new one."""
    started = time.perf_counter()
    lease = claim_lease(services.settings.email_endpoint)
    taken = outbox.claim(services, report_id, lease)
    if taken is None:
        return Delivered(report_id, "busy")
    report = taken.report
    try:
        with services.database.connection_context():
            content = report_content(services, report)
        if content is None:
            outbox.finish(services, taken, "skipped", error="the session or tutor is no longer stored")
            return Delivered(report_id, "skipped")
        rendered = render(content)
        msgid = message_id(report.report_key, report.id, services.settings.email_from)
        message = compose(rendered, services.settings.email_from, report.recipients, msgid, services.clock())
        served = outbox.deliveries(services, report_id)
        sent = refused = resent = 0
        errors = []
        with (transport or partial(open_transport, services.settings.email_endpoint))() as sender:
            for recipient in report.recipients:
                state = served.get(recipient)
                if state in ("sent", "refused"):
                    sent += state == "sent"
                    continue
                resent += state == "sending"  # an earlier attempt died after handing it over, maybe
                outbox.start_delivery(services, taken, recipient, lease)
                try:
                    response = sender.send(message, recipient)
                except RecipientRefused as exc:
                    outbox.record_delivery(services, report_id, recipient, "refused", str(exc))
                    refused += 1
                    errors.append(f"refused: {exc}")
                    continue
                outbox.record_delivery(services, report_id, recipient, "sent", response)
                sent += 1
    except outbox.ClaimLost:
        return Delivered(report_id, "busy")  # our lease lapsed mid-report; the sender holding it now finishes it
    except Exception as exc:
        outbox.release(services, taken, f"{type(exc).__name__}: {exc}", retry_in)
        raise
    status = "sent" if sent else "failed"
    outbox.finish(services, taken, status, error="; ".join(errors) or None, subject=rendered.subject,
                  message_id=msgid)
    return Delivered(report_id, status, sent, refused, resent, 1000 * (time.perf_counter() - started))


def claim_lease(endpoint: EmailEndpoint) -> dt.timedelta:
    """How long a claim lasts between renewals (one per recipient): well beyond any one SMTP exchange."""
    return max(MIN_CLAIM_LEASE, dt.timedelta(seconds=10 * endpoint.timeout_seconds))


def deliver_ready(services: Services, tutor_ids: Iterable[str], progress: ProgressHook | None = None
                  ) -> list[Delivered]:
    """Prepare and send, in this process, the reports of tutors just rescored (``tqs ingest --sync``).
    A report that fails here stays pending, and a worker's sweeper retries it."""
    report_ids = outbox.prepare_for_tutors(services, list(tutor_ids))
    results = []
    senders = SenderPool(services.settings.email_endpoint)
    try:
        for done, report_id in enumerate(report_ids, 1):
            try:
                results.append(deliver(services, report_id, IN_PROCESS_RETRY, senders.open))
            except Exception as exc:
                results.append(Delivered(report_id, "failed"))
                log_event(logger, "email_attempt_failed", logging.ERROR, report_id=report_id,
                          error=type(exc).__name__)
            if progress:
                progress("email", done, len(report_ids))
    finally:
        senders.close()
    return results


def report_content(services: Services, report: EmailReport) -> ReportContent | None:
    """The report's content as scored now (a digest also lists who changed since the previous one)."""
    settings, metric_names = services.settings, services.metric_names
    if report.kind == "digest":
        facts = report.facts or {}
        return digest_report(settings, metric_names, report.created_at.date(), facts.get("previous"))
    change = None if report.kind == "session" else ("raised" if report.flagged else "cleared")
    if report.session_id:
        return session_report(settings, metric_names, report.session_id, change)
    tutor = queries.get_tutor_detail(report.tutor_id, metric_names) if report.tutor_id else None
    return tutor_report(settings, metric_names, tutor, None, change) if tutor else None


def log_delivery(done: Delivered, attempt: int = 1) -> None:
    """One line per attempt, ids and counts only (addresses are not logged)."""
    level = logging.INFO if done.status in ("sent", "skipped", "busy") else logging.ERROR
    log_event(logger, f"email_{done.status}", level, report_id=done.report_id, recipients=done.recipients,
              refused=done.refused, resent=done.resent, attempt=attempt, ms=done.ms)
