"""The dashboard's data: every read goes through :mod:`engine.queries`, one connection per call.

One store serves every admin's session; the overview (the same for everyone) is kept for a
few seconds so that many open dashboards refreshing every 30 seconds cost one query set.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

from engine import queries
from engine.audit import Change, history, stored_settings
from engine.backtest import Backtest, backtest
from engine.rulekit import Rate
from engine.rulereport import describe_rules
from engine.services import Services
from engine.windows import day_of

WEEKS_SHOWN = 12


def sessions_metric(window_days: int) -> str:
    return f"sessions_{window_days}d"


@dataclass(frozen=True)
class Measure:
    """A rate a rule declares, as the list, the overview and the chart show it."""

    rule: str
    rate: Rate
    window_days: int  # the window the rule decides on

    @property
    def name(self) -> str:
        return self.rate.name


@dataclass(frozen=True)
class Overview:
    """The header's numbers, as of ``as_of``."""

    as_of: dt.datetime
    window_days: int
    tutors: int
    flagged: int
    flagged_week_ago: int
    measure: Measure | None
    base: int  # the measure's denominator over every tutor in the window
    events: int  # ... and its numerator
    scored_today: int
    backlog: queries.Backlog

    @property
    def rate(self) -> float | None:
        """Every tutor's events over every tutor's base in the window, in percent."""
        return None if not self.base else round(100 * self.events / self.base, 2)


@dataclass(frozen=True)
class TutorStory:
    """Everything the detail view shows about one tutor."""

    detail: dict[str, Any]
    points: list[dict[str, Any]]
    risk_events: list[dict[str, Any]]  # every flag raised or cleared, oldest first
    weeks: list[dict[str, Any]]


class DashboardStore:
    def __init__(self, services: Services, overview_seconds: float = 5.0):
        self.services = services
        self._overview_seconds = overview_seconds
        self._overviews: dict[tuple[int, str], tuple[float, Overview]] = {}
        self._lock = threading.Lock()
        self._baselines: dict = {}  # the what-if's counts and current replay, reused for a minute

    @property
    def metric_names(self):
        return self.services.metric_names

    @property
    def sortable_fields(self) -> list[str]:
        return queries.sortable_fields(self.metric_names)

    @property
    def measures(self) -> list[Measure]:
        """Every rate a loaded rule declares, in the rules' order."""
        rules = self.services.rules
        return [Measure(rule, rate, rules.window_days(rule)) for rule, rate in self.metric_names.rates]

    def measure(self, name: str) -> Measure | None:
        """The rate called ``name``, else the first one; None when no loaded rule declares a rate."""
        measures = self.measures
        return next((m for m in measures if m.name == name), measures[0] if measures else None)

    def overview(self, window_days: int, measure: str = "") -> Overview:
        key = (window_days, measure)
        with self._lock:
            cached = self._overviews.get(key)
            if cached and time.monotonic() - cached[0] < self._overview_seconds:
                return cached[1]
        overview = self._read_overview(window_days, self.measure(measure))
        with self._lock:
            self._overviews[key] = (time.monotonic(), overview)
        return overview

    def _read_overview(self, window_days: int, measure: Measure | None) -> Overview:
        now = self.services.clock()
        today = day_of(now)
        names = [measure.rate.base_metric(window_days), measure.rate.events_metric(window_days)] if measure else []
        with self.services.database.connection_context():
            totals = queries.metric_totals(names)
            return Overview(
                as_of=now,
                window_days=window_days,
                tutors=queries.list_tutors(self.metric_names, limit=1).total,
                flagged=queries.flagged_count(),
                flagged_week_ago=queries.flagged_count(on=today - dt.timedelta(days=7)),
                measure=measure,
                base=int(totals[names[0]]) if measure else 0,
                events=int(totals[names[1]]) if measure else 0,
                scored_today=queries.sessions_stored_since(dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)),
                backlog=queries.backlog(now),
            )

    def tutor_page(self, flagged: bool | None, search: str, sort: str, limit: int, offset: int) -> queries.TutorPage:
        with self.services.database.connection_context():
            return queries.list_tutors(self.metric_names, flagged=flagged, search=search or None, sort=sort,
                                       limit=limit, offset=offset)

    def tutor_story(self, tutor_id: str) -> TutorStory | None:
        today = day_of(self.services.clock())
        with self.services.database.connection_context():
            detail = queries.get_tutor_detail(tutor_id, self.metric_names)
            if detail is None:
                return None
            history = queries.get_tutor_history(tutor_id, queries.DEFAULT_HISTORY_DAYS, today, self.metric_names) or {}
            weeks = queries.sessions_per_week(tutor_id, today, WEEKS_SHOWN)
            risk_events = queries.list_risk_events(tutor_id=tutor_id)
        return TutorStory(detail, history.get("points", []), risk_events, weeks)

    def rules_report(self) -> list[dict[str, Any]]:
        """Every installed rule with its settings and where each comes from (as ``tqs rules`` shows them)."""
        with self.services.database.connection_context():
            return describe_rules(self.services.rules, stored_settings(self.services.database),
                                  self.services.settings.rule_env)

    def settings_changes(self, limit: int = 20) -> list[Change]:
        return history(self.services.database, limit=limit)

    def what_if(self, rule: str, changes: dict[str, str], days: int = 90) -> Backtest:
        """A backtest of the proposed settings (it reads only; ValueError names a bad setting)."""
        return backtest(self.services.database, self.services.rules, rule, changes, day_of(self.services.clock()),
                        days, baselines=self._baselines)
