"""Whatever Rails sends is shown as text in the emails: every field a report shows (tutor id and name, student
name, subject, reschedule reason) built to break out of the HTML or to be read as a template, in the session
report and in the digest, parsed as a mail client would parse the HTML. The plain-text part shows it verbatim.

(test_render.py covers a name with markup, the subject line and a name that tries to add a header.)
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.ingest import ingest
from notifications.content import digest_report, session_report
from notifications.render import render
from tests.conftest import NOW
from tests.factories import raw_session
from tests.notifications.conftest import with_email
from tests.support.inert_html import assert_inert, hrefs

HOSTILE = {
    "tutor_id": 'x"><svg onload=alert(1)>&tutor=t-other#',
    "tutor_name": "<script>alert(2)</script>{{ 7*7 }}",
    "student_name": "<img src=x onerror=alert(3)>{% raw %}",
    "subject": "</td></table><iframe src=javascript:alert(4)>",
    "reason": "<a href=\"javascript:alert(5)\">click</a>${7*7}",
}
LAYOUT_TAGS = {"style", "meta"}  # the email's own <head>: responsive rules and the viewport


@pytest.fixture
def database_url(tmp_path) -> str:
    """Escaping does not depend on the database: SQLite only."""
    return f"sqlite:///{tmp_path / 'escaping.db'}"


@pytest.fixture
def reporting(services):
    """The hostile tutor moved 4 of 8 sessions (flagged); a second hostile tutor, never flagged, is 'cleared'."""
    services = with_email(services, dashboard_url="https://quality.example.com/?theme=dark")
    fields = {key: HOSTILE[key] for key in ("tutor_name", "student_name", "subject", "reason")}
    records = [raw_session(f"h-{i}", HOSTILE["tutor_id"], NOW - dt.timedelta(days=1 + 2 * i),
                           "rescheduled" if i % 2 else "completed", "tutor", **fields) for i in range(8)]
    records += [raw_session(f"c-{i}", HOSTILE["tutor_id"] + "-cleared", NOW - dt.timedelta(days=1 + i),
                            tutor_name=HOSTILE["tutor_name"]) for i in range(3)]
    with services.database.connection_context():
        assert not ingest(services, records).rejected
    return services


def linked_tutors(html: str) -> list[str]:
    return [parse_qs(urlsplit(href).query)["tutor"][0] for href in hrefs(html) if "tutor=" in href]


def test_the_session_report_shows_every_field_as_text(reporting):
    with reporting.database.connection_context():
        rendered = render(session_report(reporting.settings, reporting.metric_names, "h-7"))
    assert_inert(rendered.html, list(HOSTILE.values()), allowed_tags=LAYOUT_TAGS)
    assert set(linked_tutors(rendered.html)) == {HOSTILE["tutor_id"]}
    assert all(value in rendered.text for value in HOSTILE.values())


def test_the_digest_shows_flagged_and_cleared_tutors_as_text(reporting):
    cleared = HOSTILE["tutor_id"] + "-cleared"
    with reporting.database.connection_context():
        rendered = render(digest_report(reporting.settings, reporting.metric_names, NOW.date(), [cleared]))
    assert_inert(rendered.html, [HOSTILE["tutor_name"], HOSTILE["tutor_id"], cleared], allowed_tags=LAYOUT_TAGS)
    assert linked_tutors(rendered.html) == [HOSTILE["tutor_id"], cleared]
