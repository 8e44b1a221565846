"""The tutor list: filters, search, and one server-side page of tutors in a Tabulator.

Sorting and paging happen in the database (``engine.queries.list_tutors``); the browser
only ever holds the page on screen. A row's tutor name is also a link, so the list works
from the keyboard: Tab to a name, Enter opens the tutor.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.paged_table import QueryPagedTabulator
from dashboard.state import DEFAULT_SORT, DashboardState
from dashboard.store import DashboardStore, Measure, sessions_metric
from dashboard.text import esc, flag_badge, moment, rate_with_interval
from dashboard.theme import STYLESHEETS
from engine.config import WINDOW_DAYS

PAGE_SIZE = 25
RISK_LABELS = {"All tutors": "all", "Flagged": "flagged", "Not flagged": "ok"}
COLUMNS = ["tutor", "rate", "flag", "sessions", "risk", "updated"]
# Tabulator's own column options: which columns a narrow screen hides first (highest first).
COLUMN_OPTIONS = [
    {"field": "tutor", "responsive": 0, "minWidth": 140, "headerSortStartingDir": "asc"},
    {"field": "rate", "responsive": 0, "minWidth": 110},
    {"field": "flag", "responsive": 0, "minWidth": 100},
    {"field": "sessions", "responsive": 2, "minWidth": 80},
    {"field": "risk", "responsive": 1, "minWidth": 70},
    {"field": "updated", "responsive": 3, "minWidth": 110},
]
# Every order the column headers give, for keyboards and for phones (where some columns are hidden).
SORT_CHOICES = {
    "Risk score, highest first": "-risk", "Risk score, lowest first": "risk",
    "Rate, highest first": "-rate", "Rate, lowest first": "rate",
    "Flagged first": "-flag", "Not flagged first": "flag",
    "Sessions, most first": "-sessions", "Sessions, fewest first": "sessions",
    "Name, A\u2013Z": "tutor", "Name, Z\u2013A": "-tutor",
    "Updated, latest first": "-updated", "Updated, earliest first": "updated",
}
CLICK_KEEPS_PAGE = "if(!(event.ctrlKey||event.metaKey||event.shiftKey||event.button))event.preventDefault()"


def sort_field(key: str, window_days: int, measure: Measure | None) -> str:
    """The read layer's sort field for a table column in the chosen window (and rate)."""
    rate = measure.rate.metric(window_days) if measure else "risk_score"
    return {"tutor": "name", "rate": rate, "flag": "flagged",
            "sessions": sessions_metric(window_days), "risk": "risk_score", "updated": "updated_at"}[key]


class TutorList(Viewer):
    def __init__(self, store: DashboardStore, state: DashboardState, **params):
        super().__init__(**params)
        self._store, self._state = store, state
        self._showing = False  # True while refresh() sets the table, whose own events must not echo back
        self._following = False  # True while the widgets are set from the state, likewise
        self.window = pn.widgets.RadioButtonGroup(
            label="Window", options={f"{d} days": d for d in WINDOW_DAYS}, value=state.window, color="primary",
            variant="outline", width=240, margin=(4, 10))
        self.risk = pn.widgets.RadioButtonGroup(
            label="Risk", options=RISK_LABELS, value=state.risk, color="primary", variant="outline",
            width=290, margin=(4, 10))
        self.search = pn.widgets.TextInput(
            label="Search tutors", value=state.search, placeholder="Tutor id or name, then Enter",
            sizing_mode="stretch_width", min_width=200, max_length=200, margin=(4, 10))
        self.sort = pn.widgets.Select(label="Sort by", options=SORT_CHOICES, value=state.sort,
                                      width=200, margin=(4, 10))
        measures = store.measures
        self.measure = pn.widgets.Select(
            label="Rate shown", options={m.rate.label.capitalize(): m.name for m in measures},
            value=self._measure().name if measures else None, width=220, margin=(4, 10), visible=len(measures) > 1)
        self.table = QueryPagedTabulator(
            page_size=PAGE_SIZE, show_index=False, disabled=True, selectable=False, layout="fit_columns",
            sizing_mode="stretch_width", formatters={name: {"type": "html"} for name in ("tutor", "rate", "flag")},
            hidden_columns=["tutor_id"], header_align={"sessions": "right", "risk": "right"},
            stylesheets=STYLESHEETS, min_width=300,
            configuration={"responsiveLayout": "hide", "columns": COLUMN_OPTIONS,
                           "columnDefaults": {"headerWordWrap": True, "headerSortStartingDir": "desc"},
                           "placeholder": "No tutors match these filters"},
        )
        self.count = pn.pane.HTML(stylesheets=STYLESHEETS, margin=(0, 10), sizing_mode="stretch_width")
        self._link_widgets()
        self.refresh()

    def _link_widgets(self) -> None:
        state = self._state
        self.window.param.watch(lambda e: self._choose(window=e.new), "value")
        self.measure.param.watch(lambda e: self._choose(measure=e.new or ""), "value")
        self.risk.param.watch(lambda e: self._choose(risk=e.new, page=1), "value")
        self.search.param.watch(lambda e: self._choose(search=e.new.strip(), page=1), "value")
        self.sort.param.watch(lambda e: self._choose(sort=e.new, page=1), "value")
        self.table.param.watch(self._table_moved, ["page", "sorters"])
        self.table.on_click(self._row_clicked)
        state.param.watch(self._state_changed, ["window", "measure", "risk", "search", "sort", "page", "tutor"])

    def _table_moved(self, *events) -> None:
        if self._showing:
            return
        changes: dict[str, Any] = {}
        for event in events:
            if event.name == "page":
                changes["page"] = event.new
            elif event.new:
                sorter = event.new[0]
                changes.update(sort=("-" if sorter.get("dir") == "desc" else "") + sorter["field"], page=1)
            else:
                changes.update(sort=DEFAULT_SORT, page=1)
        self._state.param.update(**changes)

    def _choose(self, **changes: Any) -> None:
        """An admin changed a control (not the state setting the control)."""
        if not self._following:
            self._state.param.update(**changes)

    def _row_clicked(self, event) -> None:
        self._state.tutor = str(self.table.value.iloc[event.row]["tutor_id"])

    def _state_changed(self, *events) -> None:
        state = self._state
        with pn.io.hold():
            self._following = True
            try:
                self.window.value, self.risk.value, self.search.value = state.window, state.risk, state.search
                if self._measure():
                    self.measure.value = self._measure().name
                self.sort.value = state.sort
            finally:
                self._following = False
            self.refresh()

    def refresh(self) -> None:
        """Query the page on screen again (same filters, sort and page) and show it."""
        state = self._state
        offset = (state.page - 1) * PAGE_SIZE
        sort = self._sort()
        page = self._store.tutor_page(state.flagged, state.search, sort, PAGE_SIZE, offset)
        last_page = max(1, -(-page.total // PAGE_SIZE))
        if state.page > last_page:  # a link past the end, or the list shrank since: show the last page
            state.page = last_page
            return
        frame = pd.DataFrame([self._row(t) for t in page.tutors], columns=["tutor_id", *COLUMNS],
                             index=range(offset, offset + len(page.tutors)))
        self._showing = True
        try:
            self.table.titles = _titles(state.window, self._measure())
            self.table.sorters = [_sorter(sort, state, self._measure())]
            self.table.total = page.total
            self.table.page = state.page
            if self.table.value is None or not frame.equals(self.table.value):
                self.table.value = frame  # unchanged rows are not sent again: nothing flickers on a refresh
        finally:
            self._showing = False
        shown = f"{offset + 1}\u2013{offset + len(page.tutors)} of {page.total:,}" if page.tutors else "none"
        measure = self._measure()
        meaning = (f" Rate: {esc(measure.rate.events_label)} as a share of {esc(measure.rate.base_label)}; small "
                   "figures: its 95% interval." if measure else "")
        self.count.object = f'<p class="tq tq-muted" role="status">Tutors {shown}.{meaning}</p>'

    def _measure(self) -> Measure | None:
        return self._store.measure(self._state.measure)

    def _sort(self) -> str:
        """The state's sort for the read layer; riskiest first when no loaded rule measures the column."""
        state = self._state
        field = sort_field(state.sort_key, state.window, self._measure())
        if field not in self._store.sortable_fields:
            return "-risk_score"
        return ("-" if state.descending else "") + field

    def _row(self, tutor: dict[str, Any]) -> dict[str, Any]:
        window, measure = self._state.window, self._measure()
        rate = measure.rate.metric(window) if measure else ""
        return {
            "tutor_id": tutor["tutor_id"],
            "tutor": self._tutor_link(tutor),
            "rate": rate_with_interval(tutor.get(rate), tutor.get(f"{rate}_low"), tutor.get(f"{rate}_high")),
            "flag": flag_badge(tutor["flagged"]) + self._flagged_by(tutor.get("flagged_by") or []),
            "sessions": tutor.get(sessions_metric(window)),
            "risk": round(tutor["risk_score"]),
            "updated": moment(tutor["updated_at"]),
        }

    def _flagged_by(self, rules: list[str]) -> str:
        """Which rules flag the tutor, by the name of what they measure."""
        labels = {m.rule: m.rate.label for m in self._store.measures}
        names = [labels.get(rule, rule.replace("_", " ")) for rule in rules]
        return f'<span class="tq-by">{esc(", ".join(names))}</span>' if names else ""

    def _tutor_link(self, tutor: dict[str, Any]) -> str:
        state = self._state
        href = state.query_string(tutor=tutor["tutor_id"])
        current = ' aria-current="true"' if tutor["tutor_id"] == state.tutor else ""
        name = tutor["name"] or tutor["tutor_id"]
        return (f'<a class="tq-tutor" href="{esc(href)}" onclick="{CLICK_KEEPS_PAGE}"{current}>{esc(name)}</a>'
                f'<span class="tq-id">{esc(tutor["tutor_id"])}</span>')

    def __panel__(self) -> pn.viewable.Viewable:
        search = pn.Column(self.search, styles={"flex": "1 1 220px"}, sizing_mode="stretch_width", margin=0)
        filters = pn.FlexBox(self.window, self.measure, self.risk, self.sort, search, gap="4px 0",
                             align_items="flex-end", sizing_mode="stretch_width")
        return pn.Column(filters, self.count, self.table, sizing_mode="stretch_width", min_width=300)


def _sorter(sort: str, state: DashboardState, measure: Measure | None) -> dict[str, str]:
    """The header arrow for the order the rows are really in (riskiest first if the column could not sort)."""
    key = state.sort_key if sort.lstrip("-") == sort_field(state.sort_key, state.window, measure) else "risk"
    return {"field": key, "dir": "desc" if sort.startswith("-") else "asc"}


def _titles(window_days: int, measure: Measure | None) -> dict[str, str]:
    rate = f"{window_days}-day {measure.rate.label}" if measure else f"{window_days}-day rate"
    return {"tutor": "Tutor", "rate": rate, "flag": "Risk flag",
            "sessions": f"{window_days}-day sessions", "risk": "Risk score", "updated": "Last updated"}

