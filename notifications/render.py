"""Turn report content into a MIME message: Jinja2 (autoescaped) HTML with its CSS inlined by premailer,
and a plain-text part with the same facts.

Email clients drop ``<style>`` blocks (Gmail, Outlook), so every rule is inlined; media queries
stay in a ``<style>`` block for the clients that honour them. premailer never fetches anything
(``allow_network=False``). Gmail clips a message over 102 KB; a report is a few KB.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from notifications.content import ReportContent, one_line
from notifications.endpoint import address_domain

GMAIL_CLIP_BYTES = 102 * 1024
# CRLF line ends (SMTP's, and .eml files'); headers kept whole up to RFC 5322's 998-character limit, since the
# stock folding at 78 puts a long subject on a line of its own, which some clients show with a leading space.
MESSAGE_POLICY = policy.SMTP.clone(max_line_length=998)
TEMPLATES = {"session": "report", "state_change": "report", "digest": "digest"}


@functools.cache
def _environment():
    """Built on the first render: Jinja2 and premailer take a tenth of a second to import, and the API and most
    commands never render. Templates then compile once per process; nothing configurable lives here."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("notifications", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class RenderedReport:
    subject: str
    html: str
    text: str


def render(content: ReportContent) -> RenderedReport:
    """Both parts of a report; the HTML with inline styles."""
    name = TEMPLATES[content.kind]
    values = {**content.context, "subject": content.subject, "preheader": content.subject}
    html = _environment().get_template(f"{name}.html").render(values)
    text = _environment().get_template(f"{name}.txt").render(values)
    return RenderedReport(content.subject, inline_css(html), text)


def inline_css(html: str) -> str:
    from premailer import Premailer  # imported on first use, like Jinja2 above

    return Premailer(html, allow_network=False, cssutils_logging_level=logging.CRITICAL, remove_classes=False,
                     disable_validation=True, strip_important=False).transform()


def message_id(report_key: str, report_id: int, sender: str) -> str:
    """Stable for a report, so a message sent again after a crash carries the same id and can be recognised."""
    digest = hashlib.sha256(report_key.encode()).hexdigest()[:16]
    return f"<tqs.report.{report_id:08d}.{digest}@{address_domain(sender)}>"


def compose(rendered: RenderedReport, sender: str, recipients: tuple[str, ...] | list[str], msgid: str | None = None,
            when: dt.datetime | None = None) -> EmailMessage:
    """A multipart/alternative message (text first, HTML preferred by clients that show it)."""
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = one_line(rendered.subject, 250)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(when or dt.datetime.now(dt.UTC))
    message["Message-ID"] = msgid or make_msgid(domain=address_domain(sender))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies should not answer it
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message
