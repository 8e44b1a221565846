"""Wire settings into the things every entry point needs: the database and the rule registry."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import peewee
import pluggy

from engine.config import Settings
from engine.db import bind_database, open_database
from engine.registry import get_plugin_manager, metric_names
from engine.rulekit import MetricNames


@dataclass(frozen=True)
class Services:
    settings: Settings
    database: peewee.Database
    pm: pluggy.PluginManager

    @functools.cached_property
    def metric_names(self) -> MetricNames:
        """Computed once: every read asks for it."""
        return metric_names(self.pm)


def build_services(settings: Settings, extra_plugins: tuple[object, ...] = ()) -> Services:
    """Open (without connecting) the configured database, bind the models, load the rules."""
    database = bind_database(open_database(settings.database_url))
    return Services(settings, database, get_plugin_manager(settings, extra_plugins))
