"""The ``email_reports`` table as a work list: which reports are ready, who sends each, what happened.

A session report is written with the session (see :mod:`engine.storing`) and becomes ready
once its tutor has no rescore waiting, so it shows the scores that include it. A sender
claims a report with a lease (two tasks for one report never both send), records each
recipient before and after handing the message over, and finishes the report.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import peewee

from engine import queries
from engine.config import SESSION_REPORT_POLICIES
from engine.db import write_transaction
from engine.models import EmailDelivery, EmailReport, RescoreWaiting, Session, Tutor
from engine.services import Services

NOT_YET_QUEUED_GRACE = dt.timedelta(seconds=10)  # a rescore commits, then queues the reports: not stuck between


@dataclass(frozen=True)
class SweepWork:
    """What the sweeper found: tutors whose reports were never prepared, and reports queued but never sent."""

    tutor_ids: list[str]
    report_ids: list[int]


def prepare_for_tutors(services: Services, tutor_ids: Iterable[str]) -> list[int]:
    """Decide the reports of freshly rescored tutors under the policy, and mark the ones to send as queued.

    A tutor still waiting for a rescore is left alone: the rescore that follows prepares its reports
    with scores that include every stored session. A report of a session version since replaced is
    skipped: the newer version has its own report.
    """
    settings, now = services.settings, services.clock()
    tutor_ids = sorted(set(tutor_ids))
    with write_transaction(services.database):
        # One statement, so the waiting check and the reports it lets through are read together.
        waiting = RescoreWaiting.select(RescoreWaiting.tutor).where(RescoreWaiting.tutor == EmailReport.tutor_id)
        unqueued = list(
            EmailReport.select(EmailReport.id, EmailReport.fingerprint, Tutor.flagged, Session.fingerprint)
            .join(Tutor, on=(Tutor.tutor_id == EmailReport.tutor_id))
            .join(Session, peewee.JOIN.LEFT_OUTER, on=(Session.session_id == EmailReport.session_id))
            .where((EmailReport.kind == "session") & (EmailReport.status == "pending")
                   & EmailReport.queued_at.is_null() & EmailReport.tutor_id.in_(tutor_ids) & ~peewee.fn.EXISTS(waiting))
            .tuples())
        current = [(report_id, flagged) for report_id, version, flagged, stored in unqueued if version == stored]
        _skip([report_id for report_id, version, _, stored in unqueued if version != stored],
              "a newer version of the session replaced this one")
        if settings.email_policy == "flagged-only":
            send = [report_id for report_id, flagged in current if flagged]
            _skip([report_id for report_id, flagged in current if not flagged],
                  "the tutor is not flagged (flagged-only)")
        elif settings.email_policy in SESSION_REPORT_POLICIES:
            send = [report_id for report_id, _ in current]
        else:  # the policy changed after these were written
            send = []
            _skip([report_id for report_id, _ in current], f"TQS_EMAIL_POLICY is {settings.email_policy}")
        if settings.email_policy == "state-change":
            ready = [row.tutor_id for row in Tutor.select(Tutor.tutor_id).where(
                Tutor.tutor_id.in_(tutor_ids) & Tutor.tutor_id.not_in(RescoreWaiting.select(RescoreWaiting.tutor)))]
            send += [report_id for tutor_id in ready if (report_id := _state_change(services, tutor_id, now))]
        _mark_queued(send, now)
    return send


def _state_change(services: Services, tutor_id: str, now: dt.datetime) -> int | None:
    """A report when the tutor's flag differs from the one last reported (never reported: not flagged)."""
    tutor = Tutor.get_or_none(Tutor.tutor_id == tutor_id)
    if tutor is None:
        return None
    reported = (EmailReport.select(EmailReport.flagged).where((EmailReport.kind == "state_change")
                                                              & (EmailReport.tutor_id == tutor_id))
                .order_by(EmailReport.id.desc()).first())
    if tutor.flagged == bool(reported and reported.flagged):
        return None
    sequence = EmailReport.select().where((EmailReport.kind == "state_change")
                                          & (EmailReport.tutor_id == tutor_id)).count() + 1
    return _create(services, "state_change", f"state:{tutor_id}:{sequence}", now, tutor_id=tutor_id,
                   session_id=queries.latest_session_id(tutor_id), flagged=tutor.flagged)


def create_digest(services: Services, day: dt.date) -> int | None:
    """Today's digest, made once: returns its id while it still needs sending (else ``None``)."""
    now = services.clock()
    with write_transaction(services.database):
        existing = EmailReport.get_or_none(EmailReport.report_key == f"digest:{day.isoformat()}")
        if existing is not None:
            return existing.id if existing.status == "pending" and existing.queued_at is None else None
        previous = (EmailReport.select(EmailReport.facts).where(EmailReport.kind == "digest")
                    .order_by(EmailReport.id.desc()).first())
        facts = {"flagged": sorted(queries.flagged_tutor_ids()),
                 "previous": previous.facts["flagged"] if previous and previous.facts else None}
        report_id = _create(services, "digest", f"digest:{day.isoformat()}", now, facts=facts)
        _mark_queued([report_id] if report_id else [], now)
        return report_id


def _create(services: Services, kind: str, key: str, now: dt.datetime, **fields) -> int | None:
    """Insert a report unless one with this key exists (a retried task, or another worker, made it)."""
    inserted = (EmailReport.insert(kind=kind, report_key=key, recipients=list(services.settings.email_to),
                                   status="pending", attempts=0, created_at=now, **fields)
                .on_conflict_ignore().execute())
    return EmailReport.get(EmailReport.report_key == key).id if inserted else None


@dataclass(frozen=True)
class Claim:
    """A report taken by one sender; ``token`` proves it is still theirs when they renew or finish."""

    report: EmailReport
    token: str


class ClaimLost(Exception):  # noqa: N818 (a state, not a failure of ours)
    """Another sender took the report over after this sender's lease lapsed: stop, they carry on."""


def claim(services: Services, report_id: int, lease: dt.timedelta) -> Claim | None:
    """Take a pending report until ``now + lease`` and count the attempt; ``None`` when another sender holds
    it or it is finished."""
    now, token = services.clock(), secrets.token_hex(8)
    with write_transaction(services.database):
        taken = EmailReport.update(claimed_until=now + lease, claim_token=token,
                                   attempts=EmailReport.attempts + 1).where(
            (EmailReport.id == report_id) & (EmailReport.status == "pending")
            & (EmailReport.claimed_until.is_null() | (EmailReport.claimed_until < now))).execute()
        return Claim(EmailReport.get_by_id(report_id), token) if taken else None


def deliveries(services: Services, report_id: int) -> dict[str, str]:
    """Each recipient's state so far: sending (handed over, maybe), sent, refused."""
    with services.database.connection_context():
        return {row.recipient: row.status for row in
                EmailDelivery.select().where(EmailDelivery.report == report_id)}


def start_delivery(services: Services, taken: Claim, recipient: str, lease: dt.timedelta) -> None:
    """Before a recipient's message goes: renew the claim and record the recipient as ``sending``, together;
    :class:`ClaimLost` when the lease lapsed and another sender holds the report now."""
    now = services.clock()
    with write_transaction(services.database):
        renewed = EmailReport.update(claimed_until=now + lease).where(
            (EmailReport.id == taken.report.id) & (EmailReport.claim_token == taken.token)
            & (EmailReport.status == "pending")).execute()
        if not renewed:
            raise ClaimLost(f"report {taken.report.id}")
        _upsert_delivery(taken.report.id, recipient, "sending", None, now)


def record_delivery(services: Services, report_id: int, recipient: str, status: str, response: str | None) -> None:
    """What happened to one recipient (``sent`` or ``refused``), committed at once: it is true whoever holds
    the claim now."""
    with write_transaction(services.database):
        _upsert_delivery(report_id, recipient, status, response, services.clock())


def _upsert_delivery(report_id: int, recipient: str, status: str, response: str | None, now: dt.datetime) -> None:
    sent_at = now if status == "sent" else None
    (EmailDelivery.insert(report=report_id, recipient=recipient, status=status, attempts=1, response=response,
                          sent_at=sent_at)
     .on_conflict(conflict_target=[EmailDelivery.report, EmailDelivery.recipient],
                  update={EmailDelivery.status: status, EmailDelivery.response: response,
                          EmailDelivery.sent_at: sent_at,
                          EmailDelivery.attempts: EmailDelivery.attempts + (1 if status == "sending" else 0)})
     .execute())


def finish(services: Services, taken: Claim, status: str, *, error: str | None = None, subject: str | None = None,
           message_id: str | None = None) -> None:
    """Close a claimed report: sent, or skipped (nothing to send). A sender that lost its claim changes nothing."""
    now = services.clock()
    with write_transaction(services.database):
        fields = {EmailReport.status: status, EmailReport.last_error: error, EmailReport.claimed_until: None,
                  EmailReport.claim_token: None}
        if status == "sent":
            fields[EmailReport.sent_at] = now
        if subject is not None:
            fields[EmailReport.subject] = subject[:400]
        if message_id is not None:
            fields[EmailReport.message_id] = message_id
        EmailReport.update(fields).where((EmailReport.id == taken.report.id)
                                         & (EmailReport.claim_token == taken.token)).execute()


def release(services: Services, taken: Claim, error: str, retry_in: dt.timedelta) -> None:
    """After a failed attempt: record why, let go of the claim, and keep the sweeper off until the retry is due."""
    now = services.clock()
    with write_transaction(services.database):
        EmailReport.update(last_error=error[:2000], claimed_until=None, claim_token=None,
                           queued_at=now + retry_in).where(
            (EmailReport.id == taken.report.id) & (EmailReport.claim_token == taken.token)).execute()


def give_up(services: Services, report_id: int, error: str) -> None:
    """The last retry failed: park the report as failed (``tqs retry-failed`` queues it again), unless another
    sender has claimed it since."""
    now = services.clock()
    with write_transaction(services.database):
        EmailReport.update(status="failed", last_error=error[:2000]).where(
            (EmailReport.id == report_id) & (EmailReport.status == "pending")
            & (EmailReport.claimed_until.is_null() | (EmailReport.claimed_until < now))).execute()


def sweep(services: Services, older_than: dt.timedelta, include_lost: bool) -> SweepWork:
    """With ``include_lost`` (the queue is empty, so nothing is merely waiting its turn): tutors with reports
    never prepared (a worker died after the rescore, or the queue was down), and reports queued longer than
    ``older_than`` ago and not being sent (re-stamped as queued now)."""
    now = services.clock()
    if not include_lost:
        return SweepWork([], [])
    with write_transaction(services.database):
        waiting = RescoreWaiting.select(RescoreWaiting.tutor)
        tutors = {row.tutor_id for row in EmailReport.select(EmailReport.tutor_id).distinct().where(
            (EmailReport.kind == "session") & (EmailReport.status == "pending") & EmailReport.queued_at.is_null()
            & (EmailReport.created_at < now - NOT_YET_QUEUED_GRACE) & EmailReport.tutor_id.not_in(waiting))}
        if services.settings.email_policy == "state-change":
            tutors |= set(_unreported_flag_changes(waiting))
        lost = [row.id for row in EmailReport.select(EmailReport.id).where(
            (EmailReport.status == "pending") & (EmailReport.queued_at < now - older_than)
            & (EmailReport.claimed_until.is_null() | (EmailReport.claimed_until < now))).limit(5000)]
        _mark_queued(lost, now)
        return SweepWork(sorted(tutors), lost)


def _unreported_flag_changes(waiting: peewee.ModelSelect) -> list[str]:
    """Tutors whose flag now differs from the last state-change report about them (none: not flagged)."""
    latest = (EmailReport.select(EmailReport.tutor_id, peewee.fn.MAX(EmailReport.id).alias("last_id"))
              .where(EmailReport.kind == "state_change").group_by(EmailReport.tutor_id).alias("latest"))
    reported = EmailReport.alias("reported")
    query = (Tutor.select(Tutor.tutor_id)
             .join(latest, peewee.JOIN.LEFT_OUTER, on=(latest.c.tutor_id == Tutor.tutor_id))
             .join(reported, peewee.JOIN.LEFT_OUTER, on=(reported.id == latest.c.last_id))
             .where((Tutor.flagged != peewee.fn.COALESCE(reported.flagged, False)) & Tutor.tutor_id.not_in(waiting)))
    return [row.tutor_id for row in query]


def reset_failed(services: Services) -> list[int]:
    """Failed reports back to pending (refused recipients are tried again too); returns their ids."""
    now = services.clock()
    with write_transaction(services.database):
        ids = [row.id for row in EmailReport.select(EmailReport.id).where(EmailReport.status == "failed")]
        if ids:
            EmailReport.update(status="pending", attempts=0, claimed_until=None, claim_token=None, queued_at=now).where(
                EmailReport.id.in_(ids)).execute()
            EmailDelivery.delete().where(EmailDelivery.report.in_(ids) & (EmailDelivery.status == "refused")).execute()
    return ids


def _skip(ids: Sequence[int], reason: str) -> None:
    if ids:
        EmailReport.update(status="skipped", last_error=reason).where(EmailReport.id.in_(list(ids))).execute()


def _mark_queued(ids: Sequence[int], now: dt.datetime) -> None:
    if ids:
        EmailReport.update(queued_at=now).where(EmailReport.id.in_(list(ids))).execute()
