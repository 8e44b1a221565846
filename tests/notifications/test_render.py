"""The report itself: styles inlined, input escaped, the dashboard link, the size limit, every rule shown."""

from __future__ import annotations

import datetime as dt
import email
import html
import re
from email import policy

from engine.ingest import ingest
from engine.services import Services
from notifications.content import dashboard_link, session_report
from notifications.render import GMAIL_CLIP_BYTES, compose, message_id, render
from tests.conftest import NOW
from tests.factories import raw_session
from tests.notifications.conftest import SENDER, with_email

HOSTILE = "<script>alert(1)</script>"


def _flagged_tutor(services: Services, tutor_id="t-1", name="Ann <b>Bold</b> & Co", reason=HOSTILE) -> str:
    """Eight sessions in 20 days, four moved by the tutor: flagged. Returns the last session's id."""
    records = [raw_session(f"{tutor_id}-s{i}", tutor_id, NOW - dt.timedelta(days=20 - 2 * i),
                           "rescheduled" if i % 2 else "completed", reason=reason, tutor_name=name,
                           student_name="Stu <img src=x onerror=alert(2)>") for i in range(8)]
    with services.database.connection_context():
        report = ingest(services, records)
    assert not report.rejected
    return records[-1]["session_id"]


def _report(services: Services, session_id: str):
    with services.database.connection_context():
        return session_report(services.settings, services.metric_names, session_id)


def test_html_has_inline_styles_and_escapes_every_input_value(services):
    rendered = render(_report(services, _flagged_tutor(services)))
    page = rendered.html
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>Bold</b>" not in page and "Ann &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in page
    assert "<img" not in page and "onerror=alert(2)" in page  # shown as text only
    banner = re.search(r'<td class="banner[^"]*"[^>]*>', page).group(0)
    assert "background-color:#b42318" in banner.replace(" ", "")  # inlined from the <style> block
    assert re.search(r'<a href="[^"]*"[^>]*style="[^"]*color:#fff', page.replace("; ", ";"))
    assert "@media" in page  # responsive rules stay in a style block for the clients that use them


def test_report_leads_with_the_flag_and_carries_the_dashboard_link(services):
    services = with_email(services, dashboard_url="https://quality.example.com/admin?theme=dark")
    session_id = _flagged_tutor(services)
    rendered = render(_report(services, session_id))
    link = "https://quality.example.com/admin?theme=dark&amp;tutor=t-1"
    assert f'href="{link}"' in rendered.html
    assert "https://quality.example.com/admin?theme=dark&tutor=t-1" in rendered.text
    assert rendered.subject.startswith("[FLAGGED] Ann <b>Bold</b> & Co (t-1): reschedule rate ")
    assert "over 30 days" in rendered.subject
    assert rendered.html.index("Flagged: action needed") < rendered.html.index("Why")


def test_text_part_has_the_same_facts(services):
    rendered = render(_report(services, _flagged_tutor(services)))
    text = rendered.text
    assert text.startswith("FLAGGED: Ann <b>Bold</b> & Co (t-1)")
    for fact in ("WHY", "WHAT THE NUMBERS SHOW", "WHAT TO DO", "RATES NOW", "Reschedule rate:", "Rescheduled by: tutor",
                 f"Reason:   {HOSTILE}", "Session id: t-1-s7"):
        assert fact in text
    lines = [html.unescape(line) for line in re.findall(r"<li[^>]*>(.*?)</li>", rendered.html)]
    assert len(lines) >= 3 and all(f"- {line}" in text for line in lines)


def test_the_message_stays_under_gmails_clipping_limit_with_the_longest_input(services):
    long_name, long_reason = "N" * 200, "R" * 2000
    session_id = _flagged_tutor(services, name=long_name, reason=long_reason)
    rendered = render(_report(services, session_id))
    message = compose(rendered, SENDER, ["ops@example.com"], message_id("k", 1, SENDER), NOW)
    assert len(rendered.html.encode()) < GMAIL_CLIP_BYTES
    assert len(bytes(message)) < GMAIL_CLIP_BYTES
    assert "\n" not in str(message["Subject"]) and len(str(message["Subject"])) <= 250


def test_a_name_with_a_newline_cannot_add_headers(services):
    session_id = _flagged_tutor(services, name="Eve\r\nBcc: victim@example.com")
    message = compose(render(_report(services, session_id)), SENDER, ["ops@example.com"])
    parsed = email.message_from_bytes(bytes(message), policy=policy.default)
    assert parsed["Bcc"] is None and "Eve Bcc: victim@example.com" in str(parsed["Subject"])


def test_message_has_both_parts_and_a_stable_message_id(services):
    rendered = render(_report(services, _flagged_tutor(services)))
    first = compose(rendered, SENDER, ["a@example.com", "b@example.com"], message_id("session:s:f", 7, SENDER))
    again = compose(rendered, SENDER, ["a@example.com"], message_id("session:s:f", 7, SENDER))
    assert first["Message-ID"] == again["Message-ID"] and first["Message-ID"].endswith("@example.com>")
    assert message_id("session:s:g", 7, SENDER) != first["Message-ID"]
    parsed = email.message_from_bytes(bytes(first), policy=policy.default)
    assert parsed.get_body(("plain",)).get_content().startswith("FLAGGED")
    assert "<table" in parsed.get_body(("html",)).get_content()
    assert parsed["To"] == "a@example.com, b@example.com"


def test_dashboard_link_escapes_the_tutor_id():
    assert dashboard_link("http://localhost:5006/", "a&b c") == "http://localhost:5006/?tutor=a%26b+c"


def test_a_digest_of_many_flagged_tutors_stays_under_the_clipping_limit(services):
    from notifications.content import DIGEST_ROWS, digest_report
    records = [raw_session(f"t{t}-{i}", f"t{t:03d}", NOW - dt.timedelta(days=20 - 2 * i),
                           "rescheduled" if i < 3 else "completed", tutor_name="N" * 60, reason="R" * 300)
               for t in range(120) for i in range(6)]
    with services.database.connection_context():
        ingest(services, records)
        rendered = render(digest_report(services.settings, services.metric_names, NOW.date(), ["gone-1", "gone-2"]))
    assert rendered.subject.endswith(": 120 flagged, 120 newly flagged, 2 cleared")
    assert rendered.html.count("?tutor=t") == DIGEST_ROWS and "and 70 more in the dashboard" in rendered.html
    message = compose(rendered, SENDER, ["ops@example.com"], message_id("digest:x", 1, SENDER), NOW)
    assert len(bytes(message)) < GMAIL_CLIP_BYTES


def test_an_evidence_flag_is_explained_in_the_report(services):
    import dataclasses

    from engine.registry import load_rules

    settings = dataclasses.replace(services.settings, rule_env={"TQS_FLAG_POLICY": "evidence"})
    evidence = dataclasses.replace(services, settings=settings, rule_source=load_rules(settings))
    rendered = render(_report(evidence, _flagged_tutor(evidence, reason="illness")))
    why = re.search(r"- Reschedule rate: FLAGGED\. (.*)", rendered.text).group(1)
    assert re.search(r"of 8 sessions in the last \d+ days were tutor reschedules; \d+(\.\d)?% "
                     r"(sure the rate is above 15%|likely still above 12%)", why)
    assert why.endswith("The PRD rule: 30-day rate 50% (4 tutor reschedules in 8 sessions), flagged.")
    assert "The PRD rule: 30-day rate 50%" in html.unescape(rendered.html)
