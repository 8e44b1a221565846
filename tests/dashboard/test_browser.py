"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the real stack.

One stack for the module: a throwaway PostgreSQL database seeded with 90 days of simulated
sessions, a private Redis, ``tqs api`` (gunicorn) and ``tqs worker`` (Huey), and
``tqs dashboard`` refreshing every 2 seconds. Expected figures come from the simulated
sessions themselves (tests.factories.oracle_rate) or from the REST API, never from the page.
Screenshots land in test-artifacts/dashboard/ (named in the test summary).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard.browser_driver import (
    ARTIFACTS_DIR,
    CHART,
    TABLE_ROW,
    RequestLog,
    log_in,
)
from engine.children import answers
from engine.config import Settings
from engine.services import build_services
from simulator.generate import simulate
from simulator.replay import replay_direct
from tests.factories import oracle_rate, raw_session
from tests.support.databases import throwaway_postgres, under_ci
from tests.support.processes import RedisProcess, Service, free_port, redis_server_available, tqs_argv, wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.ui
PASSWORD = "browser-test-password"
ADMIN_KEY = "browser-test-admin-key"
XSS_NAME = "<img src=x onerror=alert(1)>"
SHOTS = ARTIFACTS_DIR / "dashboard"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Dashboard:
    url: str
    stack: Stack
    sessions: list[dict]
    seeded_at: dt.datetime
    requests: RequestLog = field(default_factory=RequestLog)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def dashboard(browser, tmp_path_factory):
    if not redis_server_available():
        if under_ci():
            pytest.fail("CI=true requires Redis: redis-server is not installed here")
        pytest.skip("redis-server is not installed here")
    logs = tmp_path_factory.mktemp("ui")
    with throwaway_postgres("ui") as database_url:
        seeded_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        services = build_services(Settings(data_dir=logs, database_url=database_url))
        from engine.migrations import migrate
        with services.database.connection_context():
            migrate(services.database)
        simulation = simulate(seed=7, tutors=30, sessions_per_day=12, now=seeded_at)
        sessions = simulation.sessions + [
            raw_session(f"xss-{i}", "t-xss", seeded_at - dt.timedelta(days=1, hours=i), "rescheduled" if i < 3
                        else "completed", "tutor", tutor_name=XSS_NAME, reason="<script>alert(2)</script>")
            for i in range(8)]
        replay_direct(services.at(seeded_at), sessions)
        redis = RedisProcess(free_port(), logs).start()
        wait_until(redis.ping, 10, "redis-server to answer PING")
        stack = Stack(database_url, f"redis://127.0.0.1:{redis.port}/0", logs, services.database,
                      extra_env={"TQS_ADMIN_API_KEYS": ADMIN_KEY}).start()
        port = free_port()
        env = {**stack.env, "TQS_DASHBOARD_PASSWORD": PASSWORD, "TQS_DASHBOARD_REFRESH_SECONDS": "2"}
        server = Service("dashboard", tqs_argv("dashboard", "--port", str(port)), env, logs).start()
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _answers(url), 60, f"the dashboard to listen (log: {server.log()[-2000:]})")
            yield Dashboard(url, stack, sessions, seeded_at)
        finally:
            server.kill()
            stack.stop()
            redis.kill()
            services.database.close_all()


def _answers(url: str) -> bool:
    return answers(url + "/login")


@pytest.fixture
def new_page(browser, dashboard):
    """A fresh browser profile (no cookies, empty cache) per call; every request it makes is recorded."""
    contexts = []

    def make(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport)
        dashboard.requests.watch(context)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dashboard.dialogs.append(dialog.message), dialog.dismiss()))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def signed_in(new_page, dashboard):
    def open_signed_in(path="/", viewport=DESKTOP):
        page = new_page(viewport)
        log_in(page, dashboard.url, "admin", PASSWORD, path)
        page.wait_for_selector(TABLE_ROW)
        return page
    return open_signed_in


def until(page, condition, timeout: float, what: str):
    """Wait on a condition about the page while Playwright keeps processing its events."""
    return wait_until(condition, timeout, what, interval=0.1,
                      pause=lambda seconds: page.wait_for_timeout(1000 * seconds))


def rows(page) -> list[str]:
    """The tutor ids on screen, top to bottom."""
    cells = page.locator(f"{TABLE_ROW} .tabulator-cell[tabulator-field='tutor'] .tq-id")
    return [text.strip() for text in cells.all_inner_texts()]


def query(page) -> dict[str, str]:
    return dict(parse_qsl(urlparse(page.url).query, keep_blank_values=True))


def rate_on_page(page, rate: str) -> str:
    text = page.locator(f".tq-fact[data-rate='{rate}'] dd").inner_text()
    return re.match(r"[\d.]+%|\u2014", text).group(0)


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def api_tutors(dashboard: Dashboard, query_string: str) -> dict:
    status, body = dashboard.stack.client.request("GET", "/api/tutors?" + query_string)
    assert status == 200, body
    return body


def test_the_dashboard_requires_a_login(new_page, dashboard):
    page = new_page()
    page.goto(dashboard.url + "/?tutor=t-xss")
    assert urlparse(page.url).path == "/login" and page.locator(TABLE_ROW).count() == 0
    shot(page, "login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.press("input[name=password]", "Enter")
    page.wait_for_selector("[role=alert]")
    assert urlparse(page.url).path == "/login" and "Wrong username or password" in page.content()
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_selector(CHART)  # the link it was opened with survives the login
    assert query(page)["tutor"] == "t-xss"


def test_the_list_shows_the_seeded_tutors_riskiest_first(signed_in, dashboard):
    page = signed_in()
    expected = api_tutors(dashboard, "limit=25")
    assert rows(page) == [t["tutor_id"] for t in expected["tutors"]]
    flags = page.locator(f"{TABLE_ROW} .tabulator-cell[tabulator-field='flag']").all_inner_texts()
    assert [("Flagged" in f) for f in flags] == [t["flagged"] for t in expected["tutors"]]
    assert all(f.startswith(("\u2691", "\u2713")) for f in flags)  # an icon beside the word
    flagged = api_tutors(dashboard, "flagged=true&limit=1")["total"]
    assert re.match(r"\d+", page.locator("[data-kpi=flagged] .tq-value").inner_text()).group(0) == str(flagged)
    shot(page, "desktop-list")


def test_sort_filter_window_and_search_change_the_rows(signed_in, dashboard):
    page = signed_in()
    page.locator(".tabulator-col[tabulator-field='rate'] .tabulator-col-title").click()
    until(page, lambda: query(page).get("sort") == "-rate", 10, "the sort to reach the URL")
    by_rate = api_tutors(dashboard, "sort=-reschedule_rate_30d&limit=25")["tutors"]
    until(page, lambda: rows(page) == [t["tutor_id"] for t in by_rate], 10, "rows sorted by rate")

    page.get_by_role("button", name="Flagged", exact=True).click()
    flagged = api_tutors(dashboard, "flagged=true&sort=-reschedule_rate_30d&limit=25")["tutors"]
    until(page, lambda: rows(page) == [t["tutor_id"] for t in flagged], 10, "only flagged tutors")
    assert query(page)["risk"] == "flagged"

    page.get_by_role("button", name="7 days").click()
    until(page, lambda: "7-day reschedule rate" in page.locator(".tabulator-col[tabulator-field='rate']").inner_text(),
          10, "the 7-day column")
    by_week = api_tutors(dashboard, "flagged=true&sort=-reschedule_rate_7d&limit=25")["tutors"]
    until(page, lambda: rows(page) == [t["tutor_id"] for t in by_week], 10, "rows by the 7-day rate")

    shared = page.url  # the link reproduces the view
    other = signed_in(urlparse(shared).path + "?" + urlparse(shared).query)
    assert rows(other) == rows(page)
    assert "7-day reschedule rate" in other.locator(".tabulator-col[tabulator-field='rate']").inner_text()

    page.get_by_label("Rate shown").select_option(label="No-show rate")  # another rule's rate in the list
    until(page, lambda: "7-day no-show rate" in page.locator(".tabulator-col[tabulator-field='rate']").inner_text(),
          10, "the no-show column")
    by_no_shows = api_tutors(dashboard, "flagged=true&sort=-no_show_rate_7d&limit=25")["tutors"]
    until(page, lambda: rows(page) == [t["tutor_id"] for t in by_no_shows], 10, "rows by the 7-day no-show rate")
    assert query(page)["rate"] == "no_show_rate"
    assert "7-day no-show rate" in page.locator("[data-kpi=rate]").inner_text().lower()

    target = by_week[-1]
    page.get_by_role("button", name="All tutors").click()
    page.get_by_label("Search tutors").fill(target["name"])
    page.get_by_label("Search tutors").press("Enter")
    found = api_tutors(dashboard, urlencode({"q": target["name"], "sort": "-reschedule_rate_7d"}))["tutors"]
    until(page, lambda: rows(page) == [t["tutor_id"] for t in found], 10, "the search result")
    assert target["tutor_id"] in rows(page) and query(page)["q"] == target["name"]


def test_clicking_a_tutor_opens_their_story_with_the_right_numbers(signed_in, dashboard):
    page = signed_in()
    tutor_id = rows(page)[0]
    page.locator(f"{TABLE_ROW} .tabulator-cell[tabulator-field='risk']").first.click()
    page.wait_for_selector(CHART)
    assert query(page)["tutor"] == tutor_id
    assert page.locator("h2[data-tutor-id]").get_attribute("data-tutor-id") == tutor_id
    status, record = dashboard.stack.client.request("GET", f"/api/tutors/{tutor_id}")
    assert status == 200, record
    scored_at = dt.datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))
    _, _, rate = oracle_rate(dashboard.sessions, tutor_id, scored_at, 30)  # counted afresh from every session
    assert rate_on_page(page, "reschedule_rate") == ("\u2014" if rate is None else f"{rate:.1f}%")
    for name, days in (("no_show_rate", 90), ("poor_first_session_rate", 90)):  # as the API has them
        value = record[f"{name}_{days}d"]
        assert rate_on_page(page, name) == ("\u2014" if value is None else f"{value:.1f}%")
    assert page.locator("[data-section=why]").inner_text().strip()
    assert page.locator("[data-section=recommendations] li").count() >= 1
    shot(page, "desktop-detail")


def test_a_row_on_a_later_page_opens_that_tutor(signed_in, dashboard):
    page = signed_in()
    page.locator(".tabulator-page[data-page='next']").click()
    second = [t["tutor_id"] for t in api_tutors(dashboard, "limit=25&offset=25")["tutors"]]
    until(page, lambda: rows(page) == second, 10, "the second page")
    assert query(page)["page"] == "2"
    page.locator(f"{TABLE_ROW} .tabulator-cell[tabulator-field='sessions']").nth(2).click()
    page.wait_for_selector(CHART)
    assert page.locator("h2[data-tutor-id]").get_attribute("data-tutor-id") == second[2]


def test_a_tutor_opens_from_the_keyboard(signed_in):
    page = signed_in()
    link = page.locator("a.tq-tutor").nth(1)
    tutor_id = rows(page)[1]
    for _ in range(3):  # Tabulator may lay the rows out again just after the first paint, replacing the link
        link.focus()
        page.keyboard.press("Enter")
        try:
            page.wait_for_selector(CHART, timeout=5000)
            break
        except PlaywrightTimeout:
            focused = page.evaluate("document.activeElement && document.activeElement.matches('a.tq-tutor')")
            assert not focused, "Enter on a focused tutor link did not open the tutor"  # a real failure
    page.wait_for_selector(CHART)
    assert page.locator("h2[data-tutor-id]").get_attribute("data-tutor-id") == tutor_id


def test_a_link_with_a_tutor_opens_the_detail_directly(signed_in, dashboard):
    tutor_id = api_tutors(dashboard, "sort=tutor_id&limit=1")["tutors"][0]["tutor_id"]
    page = signed_in(f"/?tutor={tutor_id}")
    page.wait_for_selector(CHART)
    assert page.locator("h2[data-tutor-id]").get_attribute("data-tutor-id") == tutor_id


def test_a_posted_session_shows_up_at_the_next_refresh_without_losing_the_view(signed_in, dashboard):
    ranked = api_tutors(dashboard, "sort=-risk_score&limit=50")["tutors"]
    tutor = ranked[0]
    page = signed_in(f"/?tutor={tutor['tutor_id']}&risk=all&sort=-sessions&window=90&page=2")
    page.wait_for_selector(CHART)
    before_rows = rows(page)
    page.mouse.wheel(0, 400)
    until(page, lambda: page.evaluate("window.scrollY") > 0, 5, "the page to scroll")
    scrolled = page.evaluate("window.scrollY")
    moved_before, sessions_before = tutor["tutor_reschedules_30d"], tutor["sessions_30d"]
    live = raw_session(f"live-{os.getpid()}", tutor["tutor_id"], dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
                       "rescheduled", "tutor", reason="posted live by the browser test")
    status, body = dashboard.stack.client.request("POST", "/api/sessions", live)
    assert status == 202, body
    dashboard.sessions.append(live)
    fact = page.locator(".tq-fact[data-rate='reschedule_rate']")
    until(page, lambda: f"{moved_before + 1} of {sessions_before + 1} sessions" in fact.inner_text(),
          30, "the posted session in the tutor's 30-day counts")
    assert "posted live by the browser test" in page.locator("[data-section=reschedules]").inner_text()
    view = query(page)
    assert (view["tutor"], view["sort"], view["window"], view["page"]) == (tutor["tutor_id"], "-sessions", "90", "2")
    assert page.locator("h2[data-tutor-id]").get_attribute("data-tutor-id") == tutor["tutor_id"]
    assert len(rows(page)) == len(before_rows) and "Tutors 26\u2013" in page.locator("[role=status]").inner_text()
    assert abs(page.evaluate("window.scrollY") - scrolled) <= 2


def test_a_hostile_name_is_shown_as_text(signed_in, dashboard):
    page = signed_in("/?q=t-xss&tutor=t-xss")
    page.wait_for_selector(CHART)
    assert rows(page) == ["t-xss"]
    assert XSS_NAME in page.locator(f"{TABLE_ROW} a.tq-tutor").inner_text()
    assert page.locator("h2[data-tutor-id]").inner_text() == XSS_NAME
    assert "<script>alert(2)</script>" in page.locator("[data-section=reschedules]").inner_text()
    assert page.locator("img[src=x]").count() == 0 and dashboard.dialogs == []


def test_a_phone_sees_everything_without_scrolling_sideways(signed_in, dashboard):
    page = signed_in(viewport=PHONE)
    overflow = "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    shot(page, "phone-list")
    page.locator("a.tq-tutor").first.click()
    page.wait_for_selector(CHART)
    assert page.evaluate(overflow) <= 0
    shot(page, "phone-detail")


# Tabulator's own markup: its role="grid" holds the header and footer directly (tabulator-tables 6.4).
THIRD_PARTY_VIOLATIONS = {("aria-required-children", ".pnx-tabulator")}
WCAG_A_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
             "resultTypes": ["violations"]}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_pages_pass_the_automated_wcag_a_and_aa_checks(new_page, signed_in, dashboard, viewport):
    from axe_playwright_python.sync_playwright import Axe

    login = new_page(viewport)
    login.goto(dashboard.url + "/login")
    page = signed_in("/?tutor=t-xss", viewport)
    page.wait_for_selector(CHART)
    found = []
    for checked in (login, page):
        for violation in Axe().run(checked, options=WCAG_A_AA).response["violations"]:
            for node in violation["nodes"]:
                if (violation["id"], node["target"][-1][-1]) not in THIRD_PARTY_VIOLATIONS:
                    found.append(f"{violation['id']}: {node['html'][:120]}")
    assert found == []


def test_no_request_left_this_host(signed_in, dashboard):
    page = signed_in("/?tutor=t-xss")  # this test's own visit, on top of every other test's
    page.wait_for_selector(CHART)
    page.get_by_role("button", name="90 days").click()
    until(page, lambda: query(page).get("window") == "90", 10, "the window to change")
    assert any(urlparse(url).path.endswith(".js") for url in dashboard.requests.urls)
    assert dashboard.requests.foreign() == []


def test_the_what_if_previews_a_threshold_from_the_keyboard_and_changes_nothing(signed_in, dashboard):
    page = signed_in()
    panel = page.locator(".tq-rules")
    panel.scroll_into_view_if_needed()
    slider = panel.get_by_role("slider", name="Threshold (%)")
    slider.wait_for()
    assert panel.locator("[data-preview]").count() == 0  # nothing replayed until an admin asks
    before = api_tutors(dashboard, "flagged=true&limit=1")["total"]
    slider.focus()
    for _ in range(6):  # 0.5 points a press: 15% down to 12%
        slider.press("ArrowLeft")
    until(page, lambda: "threshold 15 \u2192 12" in panel.locator("[data-preview] h3").inner_text(), 30,
          "the preview of a 12% threshold")
    preview = panel.locator("[data-preview]").inner_text()
    now, proposed = (int(n) for n in re.search(r"Flagged today \(replayed\)\s+(\d+)\s+(\d+)", preview).groups())
    assert proposed >= now  # a lower threshold flags at least as many
    newly = int(re.search(r"Would be newly flagged \((\d+)\)", preview).group(1))
    assert proposed - now <= newly
    status, rule = dashboard.stack.client.request("GET", "/api/rules/reschedule_rate")
    assert status == 200 and {s["name"]: s["value"] for s in rule["settings"]}["threshold"] == 15.0
    assert api_tutors(dashboard, "flagged=true&limit=1")["total"] == before  # a preview changes nothing
    shot(page, "what-if")


def test_a_settings_change_appears_in_the_audit_trail_with_its_rescore(signed_in, dashboard):
    client = dashboard.stack.client
    denied, _ = client.request("PUT", "/api/rules/no_show_rate",
                               {"settings": {"confidence": 91}, "reason": "try with an ingest key"})
    assert denied == 403
    status, body = client.request("PUT", "/api/rules/no_show_rate",
                                  {"settings": {"confidence": 91}, "reason": "browser test: audit trail",
                                   "changed_by": "tester"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert status == 200, body
    tutors = api_tutors(dashboard, "limit=1")["total"]
    wait_until(lambda: client.request("GET", "/api/rules/no_show_rate/history")[1]["changes"][0]["rescore"][
        "finished_at"], 60, "the worker to rescore after the change")
    page = signed_in()
    audit = page.locator("[data-audit]")
    audit.scroll_into_view_if_needed()
    # the pane is re-rendered on each refresh: read the row once it holds text
    until(page, lambda: "no_show_rate" in audit.locator("tbody tr").first.inner_text(), 15, "the audit trail's row")
    row = audit.locator("tbody tr").first.inner_text()
    assert "no_show_rate" in row and "confidence" in row and "90 \u2192 91" in row
    assert "tester (env-admin-1)" in row and ADMIN_KEY not in row and "browser test: audit trail" in row
    assert f"done ({tutors} tutors)" in row
    shot(page, "audit-trail")
