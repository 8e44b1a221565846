"""The audit trail of settings changed at runtime, and the stored values, as every process reads them.

Apart from :mod:`engine.rulestore` (which makes changes and rescores after them) so that scoring can name
the change behind a flag without depending on the code that makes changes.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from engine.models import RuleSettingValue, SettingsChange
from engine.windows import day_of

RECENT_CHANGES = 200  # the changes a process keeps at hand to name the cause of the flags it writes


@dataclass(frozen=True)
class Change:
    """One setting changed, as the audit trail shows it."""

    id: int
    batch: int
    rule: str
    name: str
    old_value: str
    new_value: str
    changed_by: str
    changed_at: dt.datetime
    reason: str
    rescore_total: int | None
    rescore_done: int
    rescore_finished_at: dt.datetime | None

    @property
    def rescore_state(self) -> str:
        """How far the rescore after it got: ``waiting for a worker``, ``25 of 80``, ``done (80 tutors)``."""
        if self.rescore_finished_at:
            return f"done ({self.rescore_total or 0} tutor{'' if self.rescore_total == 1 else 's'})"
        if self.rescore_total is None:
            return "waiting for a worker"
        return f"{self.rescore_done} of {self.rescore_total}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "batch": self.batch, "rule": self.rule, "setting": self.name,
                "old_value": self.old_value, "new_value": self.new_value, "changed_by": self.changed_by,
                "changed_at": _iso(self.changed_at), "reason": self.reason,
                "rescore": {"total": self.rescore_total, "done": self.rescore_done,
                            "finished_at": _iso(self.rescore_finished_at) if self.rescore_finished_at else None}}


def stored_settings(database: peewee.Database) -> dict[str, dict[str, str]]:
    """Every stored value, by rule and setting."""
    def read() -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        if _table_exists(database, RuleSettingValue._meta.table_name):  # else a database from before them
            for row in RuleSettingValue.select():
                found.setdefault(row.rule, {})[row.name] = row.value
        return found
    return _reading(database, read)


def settings_version(database: peewee.Database) -> int:
    """The id of the latest change: a process whose rules are older reloads them."""
    def read() -> int:
        if not _table_exists(database, SettingsChange._meta.table_name):
            return 0
        return SettingsChange.select(peewee.fn.MAX(SettingsChange.id)).scalar() or 0
    return _reading(database, read)


_tables_seen: weakref.WeakKeyDictionary[peewee.Database, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def _table_exists(database: peewee.Database, table: str) -> bool:
    """Whether ``table`` exists, remembered once it does (migrations add tables and none drops one): every
    rescore reads the settings version, and a catalog lookup each time cost a statement per rescore."""
    seen = _tables_seen.setdefault(database, set())
    key = (str(database.database), table)  # a database object re-pointed with init() is asked again
    if key not in seen and database.table_exists(table):
        seen.add(key)
    return key in seen


def _reading(database: peewee.Database, read: Callable[[], Any]) -> Any:
    """Read on the caller's connection when it has one (closing it could end a request's work), else on a
    connection opened and closed for the read."""
    if not database.is_closed():
        return read()
    with database.connection_context():
        return read()


def cause_of(change: Change, changes: list[Change]) -> dict[str, Any]:
    """How a flag names the settings change behind it: the batch, the rule, who, why, on which day, what changed."""
    together = [c for c in changes if c.batch == change.batch]
    return {"id": change.batch, "rule": change.rule, "changed_by": change.changed_by, "reason": change.reason,
            "on": day_of(change.changed_at).isoformat(),
            "changes": {c.name: [c.old_value, c.new_value] for c in sorted(together, key=lambda c: c.id)}}


def causes_since(changes: list[Change], version: int) -> dict[str, dict[str, Any]]:
    """For each rule, the latest change newer than ``version`` (the one a tutor's scores reflect): the flags a
    rescore raises or clears for that rule, from the change's day on, are the first under its settings."""
    found: dict[str, dict[str, Any]] = {}
    for change in changes:  # newest first, as history() reads them: usually none is newer, and this stops at once
        if change.id <= version:
            break
        if change.rule not in found:
            found[change.rule] = cause_of(change, changes)
    return found


def history(database: peewee.Database, rule: str | None = None, *, batch: int | None = None,
            limit: int = 200) -> list[Change]:
    """The audit trail, newest first: one rule's, one batch's, or every rule's."""
    query = SettingsChange.select().order_by(SettingsChange.id.desc()).limit(limit)
    if rule is not None:
        query = query.where(SettingsChange.rule == rule)
    if batch is not None:
        query = query.where(SettingsChange.batch == batch)
    return _reading(database, lambda: [_change(row) for row in query])


def _change(row: SettingsChange) -> Change:
    return Change(row.id, row.batch, row.rule, row.name, row.old_value, row.new_value, row.changed_by, row.changed_at,
                  row.reason, row.rescore_total, row.rescore_done, row.rescore_finished_at)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
