"""TQS_EMAIL_POLICY: every session, flagged tutors only, flag changes only, a daily digest, or nothing.

Sessions go through the real tasks on the immediate ``memory://`` queue (store, rescore, then the
email tasks inline), and reports land as .eml files: the embedded default transport.
"""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from pathlib import Path

from engine import inbox
from engine.models import EmailReport
from engine.queue import create_huey
from engine.tasks import register_tasks
from engine.validation import validate_session
from tests.conftest import NOW
from tests.factories import raw_session
from tests.notifications.conftest import with_email


class Rails:
    """Posts sessions the way the API does (inbox, then the queue) with the clock at a chosen moment."""

    def __init__(self, services, policy_name: str, **settings):
        self.services = with_email(services, email_policy=policy_name, email_to=("ops@example.com",), **settings)
        self.outbox = self.services.settings.email_endpoint.directory
        self.moment = NOW

    def at(self, moment: dt.datetime) -> Rails:
        self.moment = moment
        return self

    def post(self, *records) -> None:
        services = self.services.at(self.moment)
        tasks = register_tasks(create_huey("memory://"), services)
        with services.database.connection_context():
            ids = inbox.accept(services.database, [validate_session(r) for r in records], self.moment)
        assert tasks.enqueue_inbox(ids)
        self.tasks = tasks

    def subjects(self) -> list[str]:
        files = sorted(Path(self.outbox).glob("*.eml")) if Path(self.outbox).exists() else []
        return sorted(str(email.message_from_bytes(f.read_bytes(), policy=policy.default)["Subject"]) for f in files)

    def statuses(self) -> dict[str, int]:
        with self.services.database.connection_context():
            rows = EmailReport.select(EmailReport.status).tuples()
            counts: dict[str, int] = {}
            for (status,) in rows:
                counts[status] = counts.get(status, 0) + 1
            return counts


def _ok(session_id, tutor_id, days_ago):
    return raw_session(session_id, tutor_id, NOW - dt.timedelta(days=days_ago), tutor_name=f"Tutor {tutor_id}")


def _moved(session_id, tutor_id, days_ago):
    return raw_session(session_id, tutor_id, NOW - dt.timedelta(days=days_ago), "rescheduled",
                       tutor_name=f"Tutor {tutor_id}")


def _history(tutor_id: str, moved: int, total: int = 6, first_day: int = 20):
    """``total`` sessions two days apart, the first ``moved`` of them rescheduled by the tutor."""
    return [(_moved if i < moved else _ok)(f"{tutor_id}-{i}", tutor_id, first_day - 2 * i) for i in range(total)]


def test_every_session_reports_each_stored_session_once(services):
    rails = Rails(services, "every-session")
    rails.post(*_history("good", 0), *_history("bad", 3))
    assert len(rails.subjects()) == 12 and rails.statuses() == {"sent": 12}
    assert sum(s.startswith("[FLAGGED] Tutor bad (bad)") for s in rails.subjects()) == 6  # scored with all six


def test_flagged_only_reports_the_sessions_of_flagged_tutors(services):
    rails = Rails(services, "flagged-only")
    rails.post(*_history("good", 0), *_history("bad", 3))
    assert len(rails.subjects()) == 6 and all(s.startswith("[FLAGGED] Tutor bad") for s in rails.subjects())
    assert rails.statuses() == {"sent": 6, "skipped": 6}


def test_state_change_reports_only_when_a_flag_is_raised_or_cleared(services):
    rails = Rails(services, "state-change")
    rails.post(*_history("good", 0), *_history("bad", 3))
    assert rails.subjects() == ["[FLAG RAISED] Tutor bad (bad): reschedule rate 50.0% over 30 days"]
    rails.post(_ok("bad-late", "bad", 1))  # still flagged: nothing new to say
    assert len(rails.subjects()) == 1
    rails.at(NOW + dt.timedelta(days=25)).post(*[_ok(f"bad-ok-{i}", "bad", -24 + i) for i in range(6)])
    subjects = rails.subjects()
    assert len(subjects) == 2 and subjects[0].startswith("[FLAG CLEARED] Tutor bad (bad)")


def test_digest_is_sent_once_a_day_after_the_hour_and_says_what_changed(services):
    rails = Rails(services, "digest", digest_hour=7)
    rails.at(NOW.replace(hour=6)).post(*_history("good", 0), *_history("bad", 3))
    assert rails.subjects() == [] and rails.statuses() == {}  # no per-session reports under digest
    digest = rails.tasks.emails.send_digest
    assert digest.call_local() is None  # 06:00: before the hour

    rails.services = rails.services.at(NOW.replace(hour=7, minute=5))
    rails.tasks = register_tasks(create_huey("memory://"), rails.services)
    assert rails.tasks.emails.send_digest.call_local() is not None
    assert rails.tasks.emails.send_digest.call_local() is None  # once a day
    assert rails.subjects() == ["Tutor Quality digest 25 Nov 2026: 1 flagged, 1 newly flagged, 0 cleared"]

    rails.at(NOW + dt.timedelta(days=25)).post(*[_ok(f"bad-ok-{i}", "bad", -24 + i) for i in range(6)],
                                               *_history("worse", 4, first_day=-14))
    rails.services = rails.services.at(NOW + dt.timedelta(days=25, hours=-4))
    rails.tasks = register_tasks(create_huey("memory://"), rails.services)
    rails.tasks.emails.send_digest.call_local()
    latest = max(Path(rails.outbox).glob("*.eml"), key=lambda path: path.stat().st_mtime)
    message = email.message_from_bytes(latest.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Tutor Quality digest 20 Dec 2026: 1 flagged, 1 newly flagged, 1 cleared"
    text = message.get_body(("plain",)).get_content()
    assert "Tutor worse (worse) NEW" in text and text.index("CLEARED SINCE") < text.index("Tutor bad (bad)")


def test_off_writes_and_sends_nothing(services):
    rails = Rails(services, "off")
    rails.post(*_history("bad", 3))
    assert rails.subjects() == [] and rails.statuses() == {}
    assert rails.tasks.emails.send_digest.call_local() is None
