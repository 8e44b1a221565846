"""``tqs ingest --sync`` writes reports and says where; ``tqs email preview|send-test``; ``tqs retry-failed``."""

from __future__ import annotations

import email
import json
import os
from email import policy

import pytest

from engine.models import EmailReport
from tests.support.processes import free_port
from tests.test_cli import SAMPLE, SAMPLE_AS_OF, tqs


@pytest.fixture
def env(database_url, database, tmp_path):
    return {**os.environ, "TQS_DATABASE_URL": database_url, "TQS_DATA_DIR": str(tmp_path),
            "TQS_QUEUE_URL": "memory://"}


def test_sync_ingest_writes_one_report_per_session_and_says_where(env, tmp_path):
    result = tqs(env, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    outbox = tmp_path / "emails"
    assert f"sent 204 email reports to file://{outbox}" in result.stderr
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 204
    subjects = {str(email.message_from_bytes(f.read_bytes(), policy=policy.default)["Subject"]) for f in files}
    assert any(s.startswith("[FLAGGED] Cara Lindqvist (tut-cara): reschedule rate 35.7% over 30 days")
               for s in subjects)


def test_preview_prints_a_report_without_sending_it(env, tmp_path):
    tqs({**env, "TQS_EMAIL_POLICY": "off"}, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    text = tqs(env, "email", "preview", "tut-cara-s018").stdout
    assert text.startswith("Subject: [FLAGGED] Cara Lindqvist (tut-cara)") and "WHAT TO DO" in text
    assert tqs(env, "email", "preview", "tut-cara-s018", "--text").stdout.startswith("FLAGGED: Cara Lindqvist")
    html = tqs(env, "email", "preview", "tut-cara-s018", "--html").stdout
    assert html.startswith("<!DOCTYPE html>") and 'style="' in html and "?tutor=tut-cara" in html
    missing = tqs(env, "email", "preview", "no-such-session", check=False)
    assert missing.returncode == 1 and "no session 'no-such-session'" in missing.stderr
    assert not (tmp_path / "emails").exists()


def test_send_test_goes_through_the_configured_transport(env, smtp_server):
    mail = {**env, "TQS_EMAIL_URL": smtp_server.url(), "TQS_EMAIL_TO": "ops@example.com",
            "TQS_EMAIL_FROM": "tq@example.com"}
    result = tqs(mail, "email", "send-test", "me@example.com")
    assert "sent a sample report to me@example.com through smtp://reports:***@127.0.0.1" in result.stdout
    assert "s3cret-pass" not in result.stdout + result.stderr
    (received,) = smtp_server.received
    assert received.recipients == ["me@example.com"] and received.encrypted and received.authenticated
    assert str(received.message["Subject"]).startswith("[TEST] [FLAGGED] Sample Tutor (sample-tutor)")
    bad = tqs(mail, "email", "send-test", "not-an-address", check=False)
    assert bad.returncode == 2 and "'not-an-address' is not an email address" in bad.stderr
    down = tqs({**mail, "TQS_EMAIL_URL": f"smtp://127.0.0.1:{free_port()}"}, "email", "send-test", "me@example.com",
               check=False)
    assert down.returncode == 1 and "not sent: smtp://127.0.0.1" in down.stderr and "ConnectionRefused" in down.stderr


def test_a_bad_email_setting_stops_every_command_naming_it(env):
    result = tqs({**env, "TQS_EMAIL_URL": "smtp://relay.example.com"}, "tutors", check=False)
    assert result.returncode == 2 and "TQS_EMAIL_TO must be set" in result.stderr


def test_retry_failed_sends_reports_that_failed_for_good(env, database, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the outbox directory should be")
    failing = {**env, "TQS_EMAIL_URL": f"file://{blocked}", "TQS_EMAIL_RETRY_SECONDS": "0"}
    records = json.loads(SAMPLE.read_text())[:3]
    batch = tmp_path / "three.json"
    batch.write_text(json.dumps(records))
    tqs(failing, "ingest", str(batch))  # queued: memory:// runs the store, the rescore and each send with 3 retries
    with database.connection_context():
        assert [(r.status, r.attempts) for r in EmailReport.select()] == [("failed", 4)] * 3
        assert "cannot write to" in EmailReport.select().first().last_error
    result = tqs(env, "retry-failed")  # the outbox is fixed (the default directory)
    assert "3 failed email reports queued again" in result.stdout
    with database.connection_context():
        assert [r.status for r in EmailReport.select()] == ["sent"] * 3
    assert len(list((tmp_path / "emails").glob("*.eml"))) == 3
