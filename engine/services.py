"""Wire settings into what every entry point needs: the database, the rule registry and the clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

import peewee
import pluggy

from engine.config import Settings
from engine.db import bind_database, open_database
from engine.registry import get_plugin_manager, metric_names
from engine.rulekit import MetricNames


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Services:
    """The core's dependencies, passed explicitly. ``clock`` says what "now" is, so tests and
    ``--as-of`` replays score at a chosen moment with the same code the worker runs."""

    settings: Settings
    database: peewee.Database
    pm: pluggy.PluginManager
    clock: Callable[[], dt.datetime] = utc_now

    @functools.cached_property
    def metric_names(self) -> MetricNames:
        """Computed once: every read asks for it."""
        return metric_names(self.pm)

    def at(self, moment: dt.datetime) -> Services:
        """The same services with the clock stopped at ``moment``."""
        return dataclasses.replace(self, clock=lambda: moment)


def build_services(settings: Settings, extra_plugins: tuple[object, ...] = ()) -> Services:
    """Open (without connecting) the configured database, bind the models, load the rules."""
    database = bind_database(open_database(settings.database_url))
    return Services(settings, database, get_plugin_manager(settings, extra_plugins))
