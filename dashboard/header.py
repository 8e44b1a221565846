"""The numbers that matter now: flagged tutors and their change, the overall rate (of the rate chosen in
the list), today's work, the backlog."""

from __future__ import annotations

import datetime as dt

import panel as pn
from panel.viewable import Viewer

from dashboard.state import DashboardState
from dashboard.store import DashboardStore, Overview
from dashboard.text import FLAG_ICON, percent, plural
from dashboard.theme import STYLESHEETS
from engine.explanations import counted


class Header(Viewer):
    def __init__(self, store: DashboardStore, state: DashboardState, refresh_seconds: int, **params):
        super().__init__(**params)
        self._store, self._state, self._refresh_seconds = store, state, refresh_seconds
        self._pane = pn.pane.HTML(sizing_mode="stretch_width", stylesheets=STYLESHEETS, margin=(8, 10))
        state.param.watch(lambda _: self.refresh(), ["window", "measure"])
        self.refresh()

    def refresh(self) -> None:
        self._pane.object = render_overview(self._store.overview(self._state.window, self._state.measure),
                                            self._refresh_seconds)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._pane


def render_overview(overview: Overview, refresh_seconds: int) -> str:
    cards = [_flagged(overview), _rate(overview), _scored(overview), _backlog(overview)]
    stamp = f"{overview.as_of:%H:%M:%S} UTC, {overview.as_of.day} {overview.as_of:%b}"
    return (f'<section class="tq" aria-label="Overview"><div class="tq-kpis">{"".join(cards)}</div>'
            f'<p class="tq-fresh">Figures as of {stamp} \u00b7 refreshed every {refresh_seconds} s</p></section>')


def _card(title: str, value: str, note: str, alert: bool = False, name: str = "") -> str:
    return (f'<div class="tq-kpi{" tq-alert" if alert else ""}" data-kpi="{name}"><h2>{title}</h2>'
            f'<div class="tq-value">{value}</div><div class="tq-note">{note}</div></div>')


def _flagged(overview: Overview) -> str:
    change = overview.flagged - overview.flagged_week_ago
    since = overview.as_of.date() - dt.timedelta(days=7)
    if change > 0:
        note = f'<span class="tq-up">\u25B2 {change} more</span> than on {since.day} {since:%b}'
    elif change < 0:
        note = f'<span class="tq-down">\u25BC {-change} fewer</span> than on {since.day} {since:%b}'
    else:
        note = f"as many as on {since.day} {since:%b}"
    return _card(f"{FLAG_ICON} Flagged tutors", f'{overview.flagged}<span class="tq-of"> of {overview.tutors:,}</span>',
                 note, alert=overview.flagged > 0, name="flagged")


def _rate(overview: Overview) -> str:
    if overview.measure is None:
        return _card("Rate", "\u2013", "no loaded rule measures a rate", name="rate")
    rate = overview.measure.rate
    note = (f"{counted(overview.events, rate.events_label)} in {counted(overview.base, rate.base_label)}"
            if overview.base else f"no {rate.base_label} in this window")
    return _card(f"{overview.window_days}-day {rate.label}", percent(overview.rate), note, name="rate")


def _scored(overview: Overview) -> str:
    return _card("Scored today", f"{overview.scored_today:,}", "sessions new or changed since 00:00 UTC",
                 name="scored")


def _backlog(overview: Overview) -> str:
    backlog = overview.backlog
    notes = []
    if backlog.pending:
        notes.append(f"{backlog.pending:,} to store, oldest {_age(backlog.oldest_pending_age_seconds or 0)}")
    if backlog.tutors_waiting:
        notes.append(f"{plural(backlog.tutors_waiting, 'tutor')} to rescore, "
                     f"oldest {_age(backlog.oldest_waiting_seconds or 0)}")
    if not notes:
        notes.append("up to date: every session received is scored")
    if backlog.failed:
        notes.append(f'<span class="tq-up">{plural(backlog.failed, "session")} failed</span>: run tqs retry-failed')
    if backlog.tutors_failing:
        notes.append(f'<span class="tq-up">{plural(backlog.tutors_failing, "tutor")} failing to rescore</span>: '
                     "see the worker log")
    if backlog.emails_failed:
        notes.append(f'<span class="tq-up">{plural(backlog.emails_failed, "email report")} failed</span>: '
                     "check TQS_EMAIL_URL, then run tqs retry-failed")
    alert = bool(backlog.failed or backlog.tutors_failing or backlog.emails_failed)
    return _card("Processing backlog", f"{backlog.pending:,} waiting", " \u00b7 ".join(notes), alert=alert,
                 name="backlog")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
