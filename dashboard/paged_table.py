"""A Tabulator whose remote pages come from a database query, not from a DataFrame in memory.

Panel's remote pagination keeps the whole table in Python and slices it; at 10,000 tutors
that means loading every tutor for every admin on every refresh. Here ``value`` holds only
the page on screen (indexed by each row's position in the whole result) and ``total`` the
length of the whole result. The browser still pages and sorts through Tabulator's remote
mode: ``page`` and ``sorters`` change, the owner queries that page, and sets ``total`` then
``value``. Tested in a real browser (tests/dashboard/test_browser.py), since it leans on
how Panel's Tabulator pages (setup.cfg pins the Panel series it was checked against).
"""

from __future__ import annotations

import param
from panel.widgets import Tabulator

PAGE_EVENTS = ("page", "sorters")


class QueryPagedTabulator(Tabulator):
    total = param.Integer(default=0, bounds=(0, None), doc="Rows in the whole result, across all pages.")

    _rename = {**Tabulator._rename, "total": None}  # Python-side only: the browser learns it as max_page

    def __init__(self, **params):
        super().__init__(pagination="remote", **params)

    @property
    def _length(self) -> int:
        return self.total

    def _get_data(self):
        # The page is the value: the query already filtered, sorted and sliced it.
        return self._process_df_and_convert_to_cds(self.value)

    def _update_cds(self, *events):
        if events and all(event.name in PAGE_EVENTS for event in events):
            return  # the owner answers a new page or order with a new value
        super()._update_cds(*events)

    @param.depends("total", watch=True)
    def _total_changed(self) -> None:
        self._update_max_page()
