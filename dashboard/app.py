"""The page: top bar, header numbers, the tutor list and the selected tutor, refreshed on a timer.

One :class:`DashboardApp` per browser session, all sharing one :class:`DashboardStore`.
The refresh queries again with the admin's own state, so it keeps their selection,
filters, sort and page; rows are replaced in place, so the scroll position stays.
The whole page is built before the server answers (about 0.1-0.25 s): answering at once
and filling the page in after it connects was measured slower, as it adds a round trip.
"""

from __future__ import annotations

import logging
import time

import panel as pn
import peewee
from panel.viewable import Viewer

from dashboard.detail import TutorDetail
from dashboard.header import Header
from dashboard.rules_panel import RulesPanel
from dashboard.state import DashboardState
from dashboard.store import DashboardStore
from dashboard.text import esc, notice
from dashboard.theme import STYLESHEETS
from dashboard.tutor_list import TutorList
from engine.logs import log_event

logger = logging.getLogger("tutor_quality.dashboard")


class DashboardApp(Viewer):
    def __init__(self, store: DashboardStore, state: DashboardState, refresh_seconds: int, **params):
        super().__init__(**params)
        self.state, self.refresh_seconds = state, refresh_seconds
        self.header = Header(store, state, refresh_seconds)
        self.tutors = TutorList(store, state)
        self.detail = TutorDetail(store, state)
        self.rules = RulesPanel(store)
        self.notice = pn.pane.HTML("", visible=False, sizing_mode="stretch_width", stylesheets=STYLESHEETS,
                                   margin=(0, 10))

    def refresh(self) -> None:
        """Read everything on screen again; on failure keep what is shown and say so."""
        started = time.perf_counter()
        try:
            with pn.io.hold():
                self.header.refresh()
                self.tutors.refresh()
                self.detail.refresh()
                self.rules.refresh()
                self.notice.visible = False
        except Exception as exc:  # the admin keeps the last figures, and is told
            database = isinstance(exc, peewee.PeeweeException)
            log_event(logger, "dashboard_refresh_failed", logging.WARNING if database else logging.ERROR,
                      error=type(exc).__name__, exc_info=not database)
            reason = "The database cannot be reached just now" if database else "Something went wrong (it is logged)"
            self.notice.object = notice(f"{reason}: these are the last figures read. "
                                        f"Trying again every {self.refresh_seconds} s.")
            self.notice.visible = True
            return
        log_event(logger, "dashboard_refreshed", logging.DEBUG, ms=1000 * (time.perf_counter() - started))

    def __panel__(self) -> pn.viewable.Viewable:
        self.detail.layout.styles = {**self.detail.layout.styles, "flex": "1 1 420px"}
        tutors = pn.Column(self.tutors, sizing_mode="stretch_width", styles={"flex": "2 1 560px"}, min_width=300)
        main = pn.FlexBox(self.detail, tutors, flex_direction="row-reverse", flex_wrap="wrap", gap="12px",
                          align_items="flex-start", sizing_mode="stretch_width", margin=(0, 10))
        return pn.Column(self.notice, self.header, main, self.rules, sizing_mode="stretch_width", margin=0)


def top_bar(user: str | None) -> pn.pane.HTML:
    signed_in = f"Signed in as {esc(user)} \u00b7 " if user else ""
    return pn.pane.HTML(
        f'<header class="tq tq-topbar"><div><h1>Tutor Quality</h1><span class="tq-sub">Tutor reliability: '
        f'who needs coaching this week</span></div><span class="tq-sub">{signed_in}<a href="logout">Sign out</a>'
        f'</span></header>', sizing_mode="stretch_width", stylesheets=STYLESHEETS, margin=0)


def _notice(text: str) -> pn.pane.HTML:
    return pn.pane.HTML(notice(text), stylesheets=STYLESHEETS,
                        sizing_mode="stretch_width", margin=10)


def create_page(store: DashboardStore, refresh_seconds: int) -> pn.viewable.Viewable:
    """One admin's page, built from the URL's query string, refreshing every ``refresh_seconds``."""
    started = time.perf_counter()
    state = DashboardState()
    if pn.state.location is not None:
        state.bind_location(pn.state.location)
    try:
        app = DashboardApp(store, state, refresh_seconds)
    except peewee.PeeweeException as exc:
        log_event(logger, "dashboard_page_failed", logging.ERROR, error=type(exc).__name__)
        app = _notice("The dashboard cannot read its database just now. Reload this page in a minute.")
    except Exception as exc:
        log_event(logger, "dashboard_page_failed", logging.ERROR, error=type(exc).__name__, exc_info=True)
        app = _notice("Something went wrong building this page (it is logged). Reload it, or open the dashboard "
                      "without the address's options.")
    else:
        pn.state.add_periodic_callback(app.refresh, period=refresh_seconds * 1000)
        log_event(logger, "dashboard_page_built", tutor_selected=bool(state.tutor),
                  ms=1000 * (time.perf_counter() - started))
    return pn.Column(top_bar(pn.state.user), app, sizing_mode="stretch_width",
                     styles={"max-width": "1600px", "margin": "0 auto"})
