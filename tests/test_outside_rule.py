"""A rule from outside the project, installed as a package (tests/outside_rule), with no change to any
file outside that package: it loads, scores, and shows up in ``tqs rules``, in the API's ``flags``,
in the dashboard's tutor detail (a real browser) and in an email report, all from real processes."""

from __future__ import annotations

import datetime as dt
import email
import os
import subprocess

import pytest

from dashboard.browser_driver import ARTIFACTS_DIR, log_in
from engine.children import answers
from tests.factories import raw_session
from tests.support.processes import Service, free_port, tqs_argv, wait_until

pytestmark = pytest.mark.ui
PASSWORD = "outside-rule-password"


@pytest.fixture(scope="module")
def env(outside_rule) -> dict[str, str]:
    """What running with the package installed means: it is on the path, and its setting is set."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(outside_rule), os.environ.get("PYTHONPATH")])),
            "TQS_RULE_BUSY_WEEK_MAX_SESSIONS": "5"}


def test_tqs_rules_lists_it_with_its_source_and_setting(env, tmp_path):
    result = subprocess.run(tqs_argv("rules"), env={**os.environ, **env, "TQS_DATA_DIR": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert "busy_week 0.3.0  [loaded]  from tq-busy-week 0.3.0 (entry point)" in result.stdout
    assert "TQS_RULE_BUSY_WEEK_MAX_SESSIONS=5 (default 25)  flag above this many sessions in 7 days" in result.stdout
    assert "reschedule_rate 2.0.0  [loaded]" in result.stdout


def test_it_scores_through_the_api_the_dashboard_and_an_email(env, make_stack, sqlite_database, tmp_path, browser):
    database, url = sqlite_database
    outbox = tmp_path / "outbox"
    stack = make_stack(database, url, f"sqlite:///{tmp_path / 'queue.db'}", extra_env={
        **env, "TQS_EMAIL_POLICY": "flagged-only", "TQS_EMAIL_URL": f"file://{outbox}"})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    busy = [raw_session(f"busy-{i}", "t-busy", now - dt.timedelta(hours=6 + 12 * i), tutor_name="Bea Busy")
            for i in range(8)]
    calm = [raw_session(f"calm-{i}", "t-calm", now - dt.timedelta(days=1 + i), tutor_name="Cal Calm")
            for i in range(3)]
    assert stack.client.request("POST", "/api/sessions", busy + calm)[0] == 202
    stack.wait_until_drained(len(busy) + len(calm))

    status, detail = stack.client.request("GET", "/api/tutors/t-busy")
    flags = {flag["rule"]: flag for flag in detail["flags"]}
    assert status == 200 and detail["flagged"] and detail["busy_week_sessions"] == 8
    assert flags["busy_week"]["flagged"] and flags["busy_week"]["rule_version"] == "0.3.0"
    assert flags["busy_week"]["explanation"]["max_sessions"] == 5
    assert "Booked for 8 sessions in the past 7 days (more than 5)" in detail["insights"]
    assert not [flag for rule, flag in flags.items() if rule != "busy_week" and flag["flagged"]]
    ordered = stack.client.request("GET", "/api/tutors?sort=-busy_week_sessions")[1]["tutors"]
    assert [t["tutor_id"] for t in ordered] == ["t-busy", "t-calm"]
    health = stack.client.request("GET", "/api/health")[1]
    assert health["rules"]["busy_week"] == {"status": "loaded", "version": "0.3.0"}
    schema = stack.client.request("GET", "/api/openapi.json")[1]["components"]["schemas"]["TutorRecord"]
    assert schema["properties"]["busy_week_sessions"]["type"] == "integer"

    def report_for_busy():
        for path in outbox.glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes())
            if "t-busy" in message["Subject"]:
                return message
        return None
    message = wait_until(report_for_busy, 60, f"an email about t-busy (worker log: {stack.worker.log()[-1500:]})")
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain").get_payload(decode=True)
    assert message["Subject"].startswith("[FLAGGED] Bea Busy (t-busy)")
    assert b"Busy week: FLAGGED" in text and b"Booked for 8 sessions" in text

    port = free_port()
    dashboard = Service("dashboard", tqs_argv("dashboard", "--port", str(port)),
                        {**stack.env, "TQS_DASHBOARD_PASSWORD": PASSWORD}, tmp_path).start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(base + "/login"), 60, f"the dashboard to listen ({dashboard.log()[-1500:]})")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        log_in(page, base, "admin", PASSWORD, "/?tutor=t-busy")
        why = page.locator("[data-section='why'] li[data-rule='busy_week']")
        why.wait_for(timeout=30_000)
        assert "flagged" in why.inner_text() and "overbooked" in why.inner_text().lower()
        assert "Booked for 8 sessions" in page.locator("[data-section='insights']").inner_text()
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS_DIR / "outside-rule-detail.png"), full_page=True)
        page.close()
    finally:
        dashboard.kill()
