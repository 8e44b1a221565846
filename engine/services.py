"""Wire settings into what every entry point needs: the database, the rule registry and the clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from engine.config import Settings
from engine.db import bind_database, open_database
from engine.registry import load_rules
from engine.rulekit import MetricNames
from engine.ruleset import RuleSet


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Services:
    """The core's dependencies, passed explicitly. ``clock`` says what "now" is, so tests and
    ``--as-of`` replays score at a chosen moment with the same code the worker runs."""

    settings: Settings
    database: peewee.Database
    rules: RuleSet
    clock: Callable[[], dt.datetime] = utc_now

    @property
    def metric_names(self) -> MetricNames:
        return self.rules.metric_names

    def at(self, moment: dt.datetime) -> Services:
        """The same services with the clock stopped at ``moment``."""
        return dataclasses.replace(self, clock=lambda: moment)


def build_services(settings: Settings, extra_plugins: tuple[object, ...] = ()) -> Services:
    """Open (without connecting) the configured database, bind the models, load the rules."""
    database = bind_database(open_database(settings.database_url))
    return Services(settings, database, load_rules(settings, extra_plugins))
