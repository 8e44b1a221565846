"""Whatever Rails sends is shown as text in the dashboard: a tutor id, name and reschedule reason, and an admin's
reason for a settings change, each built to break out of the HTML (script tags, event handlers, quotes that end
an attribute, ``&`` and ``#`` that end a link's value), parsed as a browser would parse each view's HTML.

(tests/dashboard/test_browser.py loads such a tutor in Chromium and checks no dialog opens.)
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.detail import TutorDetail
from dashboard.rules_panel import render_audit, render_preview
from dashboard.state import DashboardState
from dashboard.store import DashboardStore
from dashboard.tutor_list import CLICK_KEEPS_PAGE, TutorList
from engine.ingest import ingest
from engine.rulestore import change_settings
from engine.services import LiveRules, Services
from tests.conftest import NOW
from tests.factories import raw_session
from tests.support.inert_html import assert_inert, hrefs

TUTOR_ID = 'x"><svg onload=alert(1)>&tutor=t-other#'
NAME = "<script>alert(2)</script>"
REASON = "<img src=x onerror=alert(3)>"
CHANGE_REASON = "</td><iframe src=javascript:alert(4)>"
ACTOR = "'><b onmouseover=alert(5)>"
OWN_HANDLERS = {"onclick": CLICK_KEEPS_PAGE}  # the list's own link handler (keeps the page on a plain click)


@pytest.fixture
def database_url(tmp_path) -> str:
    """Escaping does not depend on the database: SQLite only."""
    return f"sqlite:///{tmp_path / 'escaping.db'}"


@pytest.fixture
def services(database, settings) -> Services:
    """Rules whose settings can change at runtime, as the dashboard's are."""
    return Services(settings, database, LiveRules(settings, database), clock=lambda: NOW)


@pytest.fixture
def store(services) -> DashboardStore:
    """The hostile tutor moved 1 of 10 sessions (10%: not flagged at 15%, flagged at 5%), with a hostile reason."""
    records = [raw_session(f"h-{i}", TUTOR_ID, NOW - dt.timedelta(days=1 + i), "rescheduled" if i == 0 else
                           "completed", "tutor", tutor_name=NAME, reason=REASON, subject=NAME) for i in range(10)]
    records += [raw_session(f"o-{i}", "t-other", NOW - dt.timedelta(days=1 + i)) for i in range(5)]
    report = ingest(services, records)
    assert not report.rejected
    return DashboardStore(services, overview_seconds=0)


def linked_tutor(href: str) -> str:
    return parse_qs(urlsplit(href).query)["tutor"][0]


def test_the_list_shows_the_name_and_id_as_text_and_links_to_the_right_tutor(store):
    view = TutorList(store, DashboardState(search=NAME))
    row = view.table.value.set_index("tutor_id").loc[TUTOR_ID]
    for column in ("tutor", "rate", "flag"):  # the columns Tabulator renders as HTML
        assert_inert(row[column], [], allowed_handlers=OWN_HANDLERS)
    assert_inert(row["tutor"], [NAME, TUTOR_ID], allowed_handlers=OWN_HANDLERS)
    assert [linked_tutor(href) for href in hrefs(row["tutor"])] == [TUTOR_ID]
    assert_inert(view.count.object, [])


def test_the_detail_shows_name_id_and_reason_as_text(store):
    detail = TutorDetail(store, DashboardState(tutor=TUTOR_ID))
    assert detail.layout.visible
    page = assert_inert(detail.head.object, [NAME, TUTOR_ID])
    assert any(attrs.get("data-tutor-id") == TUTOR_ID for _, attrs in page.elements)
    assert_inert(detail.body.object, [REASON])
    assert_inert(detail.chart_caption.object, [], allowed_tags={"svg"})  # the legend's line samples


def test_an_unknown_tutor_from_the_address_bar_is_named_as_text(store):
    detail = TutorDetail(store, DashboardState(tutor=NAME + TUTOR_ID))
    assert_inert(detail.head.object, [NAME + TUTOR_ID])


def test_the_audit_trail_shows_an_admins_reason_and_name_as_text(store, services):
    with services.database.connection_context():
        change_settings(services, "reschedule_rate", {"threshold": "14"}, ACTOR, CHANGE_REASON)
    html = render_audit(store.settings_changes())
    assert_inert(html, [CHANGE_REASON, ACTOR])


def test_the_what_if_names_tutors_as_text_and_links_to_the_right_one(store):
    preview = render_preview(store.what_if("reschedule_rate", {"threshold": "5", "clear_threshold": "5"}))
    assert_inert(preview, [NAME])
    assert [linked_tutor(href) for href in hrefs(preview)] == [TUTOR_ID]
