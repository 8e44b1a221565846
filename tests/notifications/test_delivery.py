"""Delivery over a real SMTP server on loopback (STARTTLS + AUTH): retries, recorded failures, no duplicates."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import pytest
from huey import MemoryHuey

from engine import queries
from engine.ingest import ingest
from engine.models import EmailDelivery, EmailReport, Tutor
from engine.tasks import register_tasks
from notifications import outbox
from notifications.endpoint import parse_email_url
from notifications.tasks import RETRIES
from notifications.transports import DeliveryError, open_transport
from tests.conftest import NOW
from tests.factories import raw_session
from tests.notifications.conftest import RECIPIENTS, with_email
from tests.support.smtp import SmtpServer, non_loopback_address


def _queue(services):
    """Real Huey tasks on an in-process queue that we run by hand, so retries can be watched one by one."""
    huey = MemoryHuey("test-email", immediate=False, results=False)
    return huey, register_tasks(huey, services)


def _drain(huey, limit=50) -> int:
    """Run queued tasks (retries included: TQS_EMAIL_RETRY_SECONDS=0 puts them straight back) until none is left."""
    ran = 0
    while (task := huey.dequeue()) is not None and ran < limit:
        huey.execute(task)
        ran += 1
    return ran


def _store(services, records) -> list[str]:
    with services.database.connection_context():
        report = ingest(services, records)
    assert not report.rejected
    return sorted({done.tutor_id for done in report.rescore.rescored})


def _reports(services) -> list[EmailReport]:
    with services.database.connection_context():
        return list(EmailReport.select().order_by(EmailReport.id))


def _deliveries(services) -> dict[tuple[int, str], str]:
    with services.database.connection_context():
        return {(row.report_id, row.recipient): row.status for row in EmailDelivery.select()}


@pytest.fixture
def mailing(services, smtp_server):
    return with_email(services, email_url=smtp_server.url(), email_retry_seconds=0)


def _moved(session_id, tutor_id="t-1", days_ago=1, **extra):
    return raw_session(session_id, tutor_id, NOW - dt.timedelta(days=days_ago), "rescheduled",
                       reason="double booked", **extra)


def test_report_arrives_over_starttls_with_auth_both_parts_recipients_subject_and_link(mailing, smtp_server):
    huey, tasks = _queue(mailing)
    tasks.emails.after_rescore(_store(mailing, [_moved("s-1", tutor_name="Ann Lee")]))
    _drain(huey)
    assert sorted(r.recipients[0] for r in smtp_server.received) == sorted(RECIPIENTS)
    for received in smtp_server.received:
        assert received.encrypted and received.authenticated and received.sender == "tq@example.com"
        message = received.message
        assert message["Subject"] == "[OK] Ann Lee (t-1): reschedule rate 100.0% over 30 days"
        assert message["To"] == ", ".join(RECIPIENTS)
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert 'href="http://localhost:5006/?tutor=t-1"' in html and "?tutor=t-1" in text
        assert "double booked" in html and "double booked" in text
    (report,) = _reports(mailing)
    assert (report.status, report.session_id, report.attempts, report.last_error) == ("sent", "s-1", 1, None)
    assert report.message_id == smtp_server.received[0].message["Message-ID"] == smtp_server.received[1].message[
        "Message-ID"]
    assert report.sent_at == NOW and report.subject == smtp_server.received[0].message["Subject"]
    assert set(_deliveries(mailing).values()) == {"sent"}


@pytest.mark.parametrize("mode", ["refuse", "drop"])
def test_a_server_that_refuses_or_drops_gets_three_retries_then_a_recorded_failure(mailing, smtp_server, mode):
    smtp_server.handler.mode = mode
    huey, tasks = _queue(mailing)
    tasks.emails.after_rescore(_store(mailing, [_moved("s-1")]))
    _drain(huey)
    (report,) = _reports(mailing)
    assert report.status == "failed" and report.attempts == RETRIES + 1
    assert ("451" if mode == "refuse" else "Disconnected") in report.last_error
    with mailing.database.connection_context():
        assert Tutor.get_by_id("t-1").scored_at == NOW  # scoring went on regardless
        assert queries.backlog(NOW).emails_failed == 1
    assert smtp_server.received == []

    smtp_server.handler.mode = "accept"  # `tqs retry-failed` after the relay is fixed
    tasks.emails.queue_sends(outbox.reset_failed(mailing))
    _drain(huey)
    assert [r.status for r in _reports(mailing)] == ["sent"] and len(smtp_server.received) == len(RECIPIENTS)


def test_a_server_back_before_the_retries_run_out_gets_each_report_once(mailing, smtp_server):
    smtp_server.handler.mode = "drop"
    huey, tasks = _queue(mailing)
    tasks.emails.after_rescore(_store(mailing, [_moved("s-1"), _moved("s-2", "t-2")]))
    huey.execute(huey.dequeue())  # prepare_reports: queues one send per report
    huey.execute(huey.dequeue())  # the first send attempt fails
    smtp_server.handler.mode = "accept"
    _drain(huey)
    assert [r.status for r in _reports(mailing)] == ["sent", "sent"]
    assert sorted((r.message["Message-ID"], r.recipients[0]) for r in smtp_server.received) == sorted(
        (report.message_id, to) for report in _reports(mailing) for to in RECIPIENTS)


def test_a_recipient_refused_for_good_is_recorded_and_the_others_still_get_it(mailing, smtp_server):
    smtp_server.handler.rejected_recipients = {RECIPIENTS[0]}
    huey, tasks = _queue(mailing)
    tasks.emails.after_rescore(_store(mailing, [_moved("s-1")]))
    _drain(huey)
    (report,) = _reports(mailing)
    assert report.status == "sent" and report.attempts == 1 and "550" in report.last_error
    assert _deliveries(mailing) == {(report.id, RECIPIENTS[0]): "refused", (report.id, RECIPIENTS[1]): "sent"}
    assert [r.recipients for r in smtp_server.received] == [[RECIPIENTS[1]]]


def test_a_crash_between_sending_and_recording_resends_only_that_recipient_with_the_same_message_id(
        mailing, smtp_server):
    huey, tasks = _queue(mailing)
    tasks.emails.after_rescore(_store(mailing, [_moved("s-1")]))
    _drain(huey)
    (report,) = _reports(mailing)
    with mailing.database.connection_context():  # as if the worker died after the server accepted the second copy
        EmailDelivery.update(status="sending").where(EmailDelivery.recipient == RECIPIENTS[1]).execute()
        EmailReport.update(status="pending").execute()
    tasks.emails.send_report(report.id)
    _drain(huey)
    assert [r.recipients[0] for r in smtp_server.received] == [RECIPIENTS[0], RECIPIENTS[1], RECIPIENTS[1]]
    assert len({r.message["Message-ID"] for r in smtp_server.received}) == 1  # the resend is recognisable
    assert [r.status for r in _reports(mailing)] == ["sent"]


def test_a_duplicated_send_task_and_a_reposted_session_send_nothing_twice(mailing, smtp_server):
    huey, tasks = _queue(mailing)
    record = _moved("s-1")
    tasks.emails.after_rescore(_store(mailing, [record]))
    _drain(huey)
    (report,) = _reports(mailing)
    tasks.emails.send_report(report.id)  # the sweeper or a retry queued it again
    tasks.emails.after_rescore(_store(mailing, [record]))  # Rails posted the identical session again
    _drain(huey)
    assert len(smtp_server.received) == len(RECIPIENTS) and len(_reports(mailing)) == 1

    changed = {**record, "reschedule_info": {**record["reschedule_info"], "reason": "sick"}}
    tasks.emails.after_rescore(_store(mailing, [changed]))  # a changed session is news: a new report
    _drain(huey)
    assert [r.status for r in _reports(mailing)] == ["sent", "sent"]
    assert len(smtp_server.received) == 2 * len(RECIPIENTS)
    assert "sick" in smtp_server.received[-1].message.get_body(("plain",)).get_content()


def test_reports_wait_while_their_tutor_waits_for_a_rescore(mailing, smtp_server):
    from engine.storing import store_sessions
    from tests.factories import session
    huey, tasks = _queue(mailing)
    with mailing.database.connection_context():
        store_sessions(mailing, [session("s-1", "t-1", NOW)])
    tasks.emails.after_rescore(["t-1"])  # stored, not yet rescored: its report would show stale scores
    _drain(huey)
    assert [r.status for r in _reports(mailing)] == ["pending"] and smtp_server.received == []


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"], message["Message-ID"] = (
        "tq@example.com", "ops@example.com", "test", "<t@example.com>")
    message.set_content("body")
    return message


def test_credentials_are_never_sent_in_clear_to_another_host(tmp_path):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    server = SmtpServer(tmp_path, host="0.0.0.0", starttls=False).start()
    try:
        remote = parse_email_url(server.url().replace("0.0.0.0", address))
        with pytest.raises(DeliveryError, match="refusing to send the password in clear"), \
                open_transport(remote) as sender:
            sender.send(_message(), "ops@example.com")
        assert server.handler.auth_attempts == 0 and server.received == []
        local = parse_email_url(server.url().replace("0.0.0.0", "127.0.0.1"))
        with open_transport(local) as sender:  # on this machine nothing crosses a network
            sender.send(_message(), "ops@example.com")
        assert server.received[0].authenticated and not server.received[0].encrypted
    finally:
        server.stop()


def test_starttls_required_but_not_offered_is_a_failure(tmp_path):
    server = SmtpServer(tmp_path, starttls=False, auth=False).start()
    try:
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"), \
                open_transport(parse_email_url(server.url(user=False, query="starttls=require"))) as sender:
            sender.send(_message(), "ops@example.com")
        assert server.received == []
    finally:
        server.stop()


def test_smtps_is_tls_from_the_first_byte(tmp_path):
    server = SmtpServer(tmp_path, implicit_tls=True).start()
    try:
        with open_transport(parse_email_url(server.url())) as sender:
            sender.send(_message(), "ops@example.com")
        assert server.received[0].encrypted and server.received[0].authenticated
    finally:
        server.stop()


def test_an_untrusted_certificate_is_refused(tmp_path, smtp_server):
    untrusted = parse_email_url(smtp_server.url().split("?")[0])  # without ?cafile: the system's CAs only
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"), open_transport(untrusted) as sender:
        sender.send(_message(), "ops@example.com")
    assert smtp_server.received == []


def test_a_sender_whose_lease_lapsed_stops_and_the_one_that_took_over_sends_each_copy_once(mailing, smtp_server):
    from notifications.delivery import claim_lease, deliver
    huey, tasks = _queue(mailing)
    tutor_ids = _store(mailing, [_moved("s-1")])
    (report_id,) = outbox.prepare_for_tutors(mailing, tutor_ids)
    lease = claim_lease(mailing.settings.email_endpoint)
    stalled = outbox.claim(mailing, report_id, lease)  # a worker took it, then hung on a dead relay
    assert deliver(mailing, report_id, dt.timedelta(minutes=1)).status == "busy"  # meanwhile: not ours to send
    later = mailing.at(NOW + lease + dt.timedelta(seconds=1))
    assert deliver(later, report_id, dt.timedelta(minutes=1)).status == "sent"  # the lease lapsed: taken over
    with pytest.raises(outbox.ClaimLost):  # the stalled worker wakes up: its next recipient is not its to send
        outbox.start_delivery(later, stalled, RECIPIENTS[1], lease)
    outbox.finish(later, stalled, "failed", error="late")  # and its verdict changes nothing
    assert [(r.status, r.last_error) for r in _reports(mailing)] == [("sent", None)]
    assert sorted(r.recipients[0] for r in smtp_server.received) == sorted(RECIPIENTS)


def test_each_change_of_a_session_is_reported_once_with_the_version_it_reports(mailing, smtp_server):
    from engine.storing import store_sessions
    from engine.validation import validate_session
    huey, tasks = _queue(mailing)
    first = _moved("s-1")
    second = {**first, "reschedule_info": {**first["reschedule_info"], "reason": "sick"}}
    with mailing.database.connection_context():  # two versions stored before the tutor's rescore
        store_sessions(mailing, [validate_session(first)])
        store_sessions(mailing, [validate_session(second)])
    tasks.emails.after_rescore(_store(mailing, [second]))
    _drain(huey)
    assert [r.status for r in _reports(mailing)] == ["skipped", "sent"]  # the replaced version is not sent
    assert {"sick" in r.message.get_body(("plain",)).get_content() for r in smtp_server.received} == {True}
    tasks.emails.after_rescore(_store(mailing, [first]))  # changed back: news again
    _drain(huey)
    assert [r.status for r in _reports(mailing)] == ["skipped", "sent", "sent"]
    assert "double booked" in smtp_server.received[-1].message.get_body(("plain",)).get_content()


def test_the_pool_reuses_a_connection_and_replaces_one_the_server_closed(smtp_server):
    from notifications.transports import SenderPool
    from tests.support.processes import wait_until
    pool = SenderPool(parse_email_url(smtp_server.url()))
    for _ in range(2):
        with pool.open() as sender:
            sender.send(_message(), "ops@example.com")
    assert smtp_server.received[0].peer == smtp_server.received[1].peer  # one TLS handshake and login for both
    smtp_server.handler.disconnect_all()  # the relay dropped the idle connection
    wait_until(lambda: all(t.is_closing() for t in smtp_server.handler.transports), 10, "the server to hang up")
    with pool.open() as sender:
        sender.send(_message(), "ops@example.com")
    assert smtp_server.received[2].peer != smtp_server.received[0].peer and len(smtp_server.received) == 3
    smtp_server.handler.mode = "drop"
    with pytest.raises(DeliveryError), pool.open() as sender:
        sender.send(_message(), "ops@example.com")
    smtp_server.handler.mode = "accept"
    with pool.open() as sender:  # a connection that failed is never reused
        sender.send(_message(), "ops@example.com")
    assert len(smtp_server.received) == 4
    pool.close()
