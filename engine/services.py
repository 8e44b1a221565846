"""Wire settings into what every entry point needs: the database, the rule registry and the clock."""
# The rules a long-running process uses follow settings changed at runtime (engine.rulestore):
# LiveRules reloads them when the latest change in the database is newer than the loaded one.

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from engine.config import Settings
from engine.db import bind_database, open_database
from engine.logs import log_event
from engine.personal import cipher_for, personal_data
from engine.registry import load_rules
from engine.rulekit import MetricNames
from engine.ruleset import RuleSet


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


RELOAD_SECONDS = 2.0  # how stale a process's rules may be after a settings change
log = logging.getLogger("tutor_quality.rules")


class LiveRules:
    """The rules with the settings stored in the database over the environment's, reloaded (at most every
    ``RELOAD_SECONDS``, one indexed read) when a change is newer than the loaded rules."""

    def __init__(self, settings: Settings, database: peewee.Database, extra_plugins: tuple[object, ...] = (),
                 reload_seconds: float = RELOAD_SECONDS):
        self.settings, self.database, self.extra_plugins = settings, database, extra_plugins
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._version = -1
        self._rules: RuleSet | None = None
        self.recent_changes: list = []  # the latest settings changes, newest first, for the flags they cause

    def current(self) -> RuleSet:
        if self._rules is None or time.monotonic() - self._checked > self.reload_seconds:
            return self.refresh()
        return self._rules

    def refresh(self) -> RuleSet:
        """Reload now if a change is newer than the loaded rules (always on first use)."""
        from engine.audit import RECENT_CHANGES, history, settings_version, stored_settings

        with self._lock:
            self._checked = time.monotonic()
            try:
                version = settings_version(self.database)
                if self._rules is None or version != self._version:
                    self._rules = self.load(stored_settings(self.database))
                    self.recent_changes = history(self.database, limit=RECENT_CHANGES) if version else []
                    self._version = version
            except peewee.DatabaseError as exc:  # database away: keep what we have (the environment's at first)
                log_event(log, "rule_settings_unreadable", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
                if self._rules is None:
                    self._rules = load_rules(self.settings, self.extra_plugins)
            return self._rules

    @property
    def version(self) -> int:
        return self._version

    def load(self, stored, strict: bool = False) -> RuleSet:
        """The rules with these stored settings, as every process would load them."""
        return load_rules(self.settings, self.extra_plugins, stored=stored, strict=strict)


@dataclass(frozen=True)
class Services:
    """The core's dependencies, passed explicitly. ``clock`` says what "now" is, so tests and
    ``--as-of`` replays score at a chosen moment with the same code the worker runs.

    ``rule_source`` is either fixed rules or :class:`LiveRules`, which follows settings changed at runtime.
    """

    settings: Settings
    database: peewee.Database
    rule_source: RuleSet | LiveRules
    clock: Callable[[], dt.datetime] = utc_now

    def __post_init__(self) -> None:
        # like the models' database, the cipher of personal data is bound where the services are built
        personal_data.initialize(cipher_for(self.settings.secret_keys, self.settings.data_dir))

    @property
    def rules(self) -> RuleSet:
        source = self.rule_source
        return source.current() if isinstance(source, LiveRules) else source

    def refresh_rules(self) -> RuleSet:
        """The rules with every stored change applied, without waiting for the next check (one indexed read;
        every rescore starts with it, so no tutor is scored on settings older than the latest change)."""
        source = self.rule_source
        return source.refresh() if isinstance(source, LiveRules) else source

    def rules_with(self, stored, strict: bool = False) -> RuleSet:
        """The rules as they would be with these stored settings (to check a change before storing it)."""
        source = self.rule_source
        if not isinstance(source, LiveRules):
            raise ValueError("this process runs fixed rules: settings cannot be changed through it")
        return source.load(stored, strict)

    @property
    def recent_changes(self) -> list:
        """The latest settings changes, newest first (none for fixed rules)."""
        source = self.rule_source
        return source.recent_changes if isinstance(source, LiveRules) else []

    @property
    def settings_version(self) -> int:
        """The latest settings change the loaded rules include (0 for fixed rules, or before any change)."""
        source = self.rule_source
        return max(source.version, 0) if isinstance(source, LiveRules) else 0

    @property
    def metric_names(self) -> MetricNames:
        return self.rules.metric_names

    def at(self, moment: dt.datetime) -> Services:
        """The same services with the clock stopped at ``moment``."""
        return dataclasses.replace(self, clock=lambda: moment)


def build_services(settings: Settings, extra_plugins: tuple[object, ...] = ()) -> Services:
    """Open (without connecting) the configured database, bind the models, load the rules (checking the
    environment's settings at once, so a bad variable stops start-up), following runtime changes after."""
    database = bind_database(open_database(settings.database_url))
    load_rules(settings, extra_plugins)
    return Services(settings, database, LiveRules(settings, database, extra_plugins))
