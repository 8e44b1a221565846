"""The report as a phone and a narrow desktop client show it: Chromium at 375 and 600 px wide.

No horizontal scrolling at either width, nothing fetched from anywhere, no script run by
hostile input; the screenshots are saved under test-artifacts/email/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.browser_driver import ARTIFACTS_DIR
from engine.ingest import ingest
from notifications.content import digest_report, session_report
from notifications.render import render
from tests.conftest import NOW
from tests.factories import raw_session

pytestmark = pytest.mark.ui
SHOTS = ARTIFACTS_DIR / "email"
WIDTHS = (375, 600)


def _seed(services, name="Priya Raman", reason="Conflict with another student <script>alert(1)</script>"):
    moved = [raw_session(f"p-{i}", "tut-priya", NOW - dt.timedelta(days=20 - 3 * i, hours=2), "rescheduled",
                         reason=reason, tutor_name=name, student_name="Sam Ortiz", subject="Algebra II")
             for i in range(4)]
    kept = [raw_session(f"p-ok-{i}", "tut-priya", NOW - dt.timedelta(days=25 - 3 * i), tutor_name=name,
                        student_name="Sam Ortiz", subject="Algebra II") for i in range(6)]
    with services.database.connection_context():
        ingest(services, kept + moved)
    return moved[-1]["session_id"]


def _show(browser, html: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    requests, dialogs = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_content(html, wait_until="load")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return page, overflow, requests, dialogs


@pytest.mark.parametrize("width", WIDTHS)
def test_session_report_fits_the_screen_without_fetching_or_running_anything(browser, services, width):
    with services.database.connection_context():
        rendered = render(session_report(services.settings, services.metric_names, _seed(services)))
    page, overflow, requests, dialogs = _show(browser, rendered.html, width)
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"report-{width}.png"), full_page=True)
        assert overflow <= 0, f"{overflow}px of horizontal scrolling at {width}px"
        assert requests == [] and dialogs == []
        card = page.locator("table.card").bounding_box()
        assert card["width"] <= 600 and card["width"] >= min(width, 600) - 40
        button = page.get_by_role("link", name="Open Priya Raman in the dashboard")
        assert button.get_attribute("href") == "http://localhost:5006/?tutor=tut-priya"
        assert button.bounding_box()["height"] >= 40  # a thumb-sized target
        assert page.get_by_text("Conflict with another student <script>alert(1)</script>", exact=True).count() == 1
        assert page.locator("script").count() == 0  # shown as text, never parsed as a tag
    finally:
        page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_longest_names_and_reasons_still_fit(browser, services, width):
    session_id = _seed(services, name="N" * 200, reason="R" * 2000)
    with services.database.connection_context():
        rendered = render(session_report(services.settings, services.metric_names, session_id))
    page, overflow, _, _ = _show(browser, rendered.html, width)
    page.close()
    assert overflow <= 0, f"{overflow}px of horizontal scrolling at {width}px"


@pytest.mark.parametrize("width", WIDTHS)
def test_digest_fits_the_screen(browser, services, width):
    _seed(services)
    with services.database.connection_context():
        rendered = render(digest_report(services.settings, services.metric_names, NOW.date(), []))
    page, overflow, requests, _ = _show(browser, rendered.html, width)
    try:
        page.screenshot(path=str(SHOTS / f"digest-{width}.png"), full_page=True)
        assert overflow <= 0 and requests == []
        assert page.get_by_role("link", name="Priya Raman").get_attribute("href").endswith("?tutor=tut-priya")
    finally:
        page.close()
