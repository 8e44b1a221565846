"""Small HTML fragments the views share. Every value that came from input is escaped here.

Names, ids and reasons arrive from Rails; they reach the page only through :func:`esc`, so a
tutor named ``<img src=x onerror=alert(1)>`` is shown as those characters.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

FLAG_ICON, OK_ICON = "\u2691", "\u2713"  # ⚑ and ✓: the flag is an icon and a word, never colour alone


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def percent(value: float | None, digits: int = 1) -> str:
    return "\u2014" if value is None else f"{value:.{digits}f}%"


def flag_badge(flagged: bool, severity: str | None = None) -> str:
    if flagged:
        detail = f" \u00b7 {esc(severity)}" if severity and severity not in ("none", "medium") else ""
        return f'<span class="tq-badge tq-flagged">{FLAG_ICON} Flagged{detail}</span>'
    return f'<span class="tq-badge tq-ok">{OK_ICON} OK</span>'


def rate_with_interval(rate: float | None, low: float | None, high: float | None) -> str:
    """The rate, and under it the 95% interval that says how sure it is."""
    if rate is None:
        return '<span class="tq-muted">no sessions</span>'
    return f'<span class="tq-rate">{percent(rate)}</span> <span class="tq-ci">{interval(low, high)}</span>'


def interval(low: float | None, high: float | None) -> str:
    """A 95% interval as ``12\u201334%``; empty when the window held no session."""
    return "" if low is None or high is None else f"{low:.0f}\u2013{high:.0f}%"


def notice(text: str) -> str:
    """A message the admin must see (the database is down, a page could not be built)."""
    return f'<p class="tq tq-notice" role="alert">{text}</p>'


def moment(iso: str | None) -> str:
    """``2026-11-25T14:03:00Z`` as ``25 Nov 14:03``, in UTC like everything else here."""
    if not iso:
        return "\u2014"
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return f"{when.day} {when:%b %H:%M}"


def day(iso: str | None) -> str:
    if not iso:
        return "\u2014"
    when = dt.date.fromisoformat(iso[:10])
    return f"{when.day} {when:%b %Y}"


def hours(value: float | None) -> str:
    if value is None:
        return "\u2014"
    if abs(value) >= 48:
        return f"{value / 24:.0f} days"
    return f"{value:.0f} h" if abs(value) >= 1 else f"{value * 60:.0f} min"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
