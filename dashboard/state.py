"""What an admin is looking at: window, filters, sort, page and the selected tutor.

Every view reads and writes this one object, and it mirrors the URL's query string
(through ``pn.state.location``), so a link reproduces the view. Values from a URL are
checked one by one: a bad one is ignored (the default stays), never an error page.
Panel's ``location.sync`` is not used because its query parsing turns ``0042`` into 42 and
``true`` into a boolean, which would change tutor ids and searches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import param

from engine.config import WINDOW_DAYS
from engine.queries import MAX_SEARCH
from engine.validation import MAX_ID_LENGTH, storable

RISK_FILTERS = {"all": None, "flagged": True, "ok": False}
SORT_KEYS = ("risk", "rate", "flag", "sessions", "tutor", "updated")
DEFAULT_SORT = "-risk"  # riskiest first, the order of `tqs tutors`
URL_NAMES = {"window": "window", "measure": "rate", "risk": "risk", "search": "q", "sort": "sort", "page": "page",
             "tutor": "tutor"}
MEASURE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")


class DashboardState(param.Parameterized):
    window = param.Selector(default=30, objects=list(WINDOW_DAYS), doc="Days in the rate window")
    measure = param.String(default="", doc="Which rule's rate the list and overview show; empty for the first")
    risk = param.Selector(default="all", objects=list(RISK_FILTERS), doc="all, flagged or ok")
    search = param.String(default="", doc="Matches tutor id or name")
    sort = param.String(default=DEFAULT_SORT, doc="A column key, '-' first for descending")
    page = param.Integer(default=1, bounds=(1, None))
    tutor = param.String(default="", doc="The tutor shown in detail; empty for none")

    @property
    def flagged(self) -> bool | None:
        return RISK_FILTERS[self.risk]

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def apply_query(self, query: Mapping[str, Any], reset_missing: bool = False) -> None:
        """Take every valid value from URL query parameters (named as in ``URL_NAMES``); skip the rest.

        With ``reset_missing``, a parameter the query leaves out goes back to its default, as a
        new address describes the whole view.
        """
        values = {}
        for name, url_name in URL_NAMES.items():
            if reset_missing and url_name not in query:
                values[name] = self.param[name].default
            if url_name in query:
                parsed = _PARSERS[name](str(query[url_name]))
                if parsed is not None:
                    values[name] = parsed
        self.param.update(**values)

    def query_string(self, **changes: Any) -> str:
        """``?window=30&risk=all&...``: the whole view (with ``changes``), for the address bar and for links."""
        values = {name: changes.get(name, getattr(self, name)) for name in URL_NAMES}
        return "?" + urlencode({URL_NAMES[name]: value for name, value in values.items()})

    def bind_location(self, location: param.Parameterized) -> None:
        """Start from the URL's query string, then keep the two in step both ways."""
        self.apply_query(dict(parse_qsl(location.search.lstrip("?"), keep_blank_values=True)))

        def to_url(*_: Any) -> None:
            if location.search != self.query_string():
                location.search = self.query_string()

        def from_url(event: Any) -> None:
            self.apply_query(dict(parse_qsl(event.new.lstrip("?"), keep_blank_values=True)), reset_missing=True)

        self.param.watch(to_url, list(URL_NAMES))
        location.param.watch(from_url, "search")


def _window(raw: str) -> int | None:
    return int(raw) if raw.strip() in {str(days) for days in WINDOW_DAYS} else None


def _measure(raw: str) -> str | None:
    return raw if MEASURE_PATTERN.fullmatch(raw) else None  # a rate no rule measures shows the first one


def _risk(raw: str) -> str | None:
    return raw if raw in RISK_FILTERS else None


def _search(raw: str) -> str | None:
    return raw if len(raw) <= MAX_SEARCH and storable(raw) else None


def _sort(raw: str) -> str | None:
    return raw if raw.lstrip("-") in SORT_KEYS and raw.count("-") <= 1 else None


def _page(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= 1_000_000 else None


def _tutor(raw: str) -> str | None:
    return raw if len(raw) <= MAX_ID_LENGTH and storable(raw) else None


_PARSERS = {"window": _window, "measure": _measure, "risk": _risk, "search": _search, "sort": _sort, "page": _page,
            "tutor": _tutor}
