"""Rule settings changed at runtime: stored over the environment's, with an audit trail of every change.

A change is checked exactly as a variable is (:func:`engine.registry.check_changes`), stored
with who made it, when and why in one transaction, and then rescored: the new settings
apply from that moment on (past days keep the flags they had; ``tqs backtest`` shows what
they would have been), and the flags the rescore raises or clears name the change.
Processes pick a change up within :data:`RELOAD_SECONDS` (see :class:`engine.services.LiveRules`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import peewee

from engine.db import write_transaction
from engine.logs import log_event
from engine.models import RiskEvent, RuleSettingValue, SettingsChange, Tutor, TutorScore
from engine.registry import ENABLED, check_changes
from engine.rescoring import rescore_tutor
from engine.results import SETTINGS_CHANGE
from engine.services import Services
from engine.windows import day_of

MAX_REASON = 1000
PROGRESS_EVERY = 25  # tutors between two progress writes of a rescore after a change
log = logging.getLogger("tutor_quality.rules")


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
        if database.table_exists(RuleSettingValue._meta.table_name):  # else a database from before them
            for row in RuleSettingValue.select():
                found.setdefault(row.rule, {})[row.name] = row.value
        return found
    return _reading(database, read)


def settings_version(database: peewee.Database) -> int:
    """The id of the latest change: a process whose rules are older reloads them."""
    def read() -> int:
        if not database.table_exists(SettingsChange._meta.table_name):
            return 0
        return SettingsChange.select(peewee.fn.MAX(SettingsChange.id)).scalar() or 0
    return _reading(database, read)


def _reading(database: peewee.Database, read: Callable[[], Any]) -> Any:
    """Read on the caller's connection when it has one (closing it could end a request's work), else on a
    connection opened and closed for the read."""
    if not database.is_closed():
        return read()
    with database.connection_context():
        return read()


def change_settings(services: Services, rule: str, changes: Mapping[str, str], changed_by: str,
                    reason: str) -> list[Change]:
    """Check and store the changes of one rule's settings; empty when nothing would change.

    ValueError says what is wrong (an unknown rule or setting, a bad value, a missing reason), and then
    nothing is stored.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("give a reason for the change: it is kept in the audit trail")
    if len(reason) > MAX_REASON:
        raise ValueError(f"the reason is {len(reason)} characters; keep it under {MAX_REASON}")
    rules = services.refresh_rules()
    found = check_changes(rules, rule, {str(k): str(v) for k, v in changes.items()})
    if not found:
        return []
    now = services.clock()
    with write_transaction(services.database):
        batch = None
        for name, (old, new) in found.items():
            RuleSettingValue.insert(rule=rule, name=name, value=new, changed_at=now).on_conflict(
                conflict_target=[RuleSettingValue.rule, RuleSettingValue.name],
                update={RuleSettingValue.value: new, RuleSettingValue.changed_at: now}).execute()
            row = SettingsChange.create(rule=rule, name=name, old_value=old, new_value=new, changed_by=changed_by,
                                        changed_at=now, reason=reason, batch=batch or 0)
            if batch is None:
                batch = row.id
                SettingsChange.update(batch=batch).where(SettingsChange.id == row.id).execute()
    services.refresh_rules()
    made = history(services.database, rule, batch=batch)
    for change in made:
        log_event(log, "rule_setting_changed", rule=rule, setting=change.name, old=change.old_value,
                  new=change.new_value, changed_by=changed_by, batch=batch)
    return made


def history(database: peewee.Database, rule: str | None = None, *, batch: int | None = None,
            limit: int = 200) -> list[Change]:
    """The audit trail, newest first: one rule's, one batch's, or every rule's."""
    query = SettingsChange.select().order_by(SettingsChange.id.desc()).limit(limit)
    if rule is not None:
        query = query.where(SettingsChange.rule == rule)
    if batch is not None:
        query = query.where(SettingsChange.batch == batch)
    return _reading(database, lambda: [_change(row) for row in query])


def unfinished_batches(database: peewee.Database, older_than: dt.timedelta, now: dt.datetime) -> list[int]:
    """Changes whose rescore never started (its task was lost, or the queue was down when they were made)."""
    with database.connection_context():
        rows = (SettingsChange.select(SettingsChange.batch).distinct()
                .where(SettingsChange.rescore_total.is_null() & (SettingsChange.changed_at < now - older_than)))
        return sorted(row.batch for row in rows)


def _change(row: SettingsChange) -> Change:
    return Change(row.id, row.batch, row.rule, row.name, row.old_value, row.new_value, row.changed_by, row.changed_at,
                  row.reason, row.rescore_total, row.rescore_done, row.rescore_finished_at)


@dataclass(frozen=True)
class SettingsRescore:
    """What the rescore after a change did: tutors rescored, and those whose flag it raised or cleared."""

    tutors: int
    changed: list[str]


def rescore_after_change(services: Services, batch: int,
                         progress: Callable[[int, int], None] | None = None) -> SettingsRescore:
    """Rescore every tutor under the settings of ``batch``, recording how far it got in the audit trail.

    The new settings apply from now on: each tutor's series is rolled forward to today, so the flags
    raised or cleared are today's, and they name the change. Enabling a rule computes its whole history.
    """
    changes = history(services.database, batch=batch)
    if not changes:
        raise ValueError(f"no settings change {batch}")
    services.refresh_rules()
    rule = changes[0].rule
    enabled = any(c.name == ENABLED and c.new_value == "true" for c in changes)
    disabled = any(c.name == ENABLED and c.new_value == "false" for c in changes)
    cause = {"id": batch, "rule": rule, "changed_by": changes[0].changed_by, "reason": changes[0].reason,
             "changes": {c.name: [c.old_value, c.new_value] for c in reversed(changes)}}
    with services.database.connection_context():
        tutor_ids = [t.tutor_id for t in Tutor.select(Tutor.tutor_id).order_by(Tutor.tutor_id)]
        was_flagged = {s.tutor_id for s in TutorScore.select(TutorScore.tutor).where(
            (TutorScore.rule == rule) & (TutorScore.flagged == True))} if disabled else set()  # noqa: E712
        before = {t.tutor_id: t.flagged for t in Tutor.select(Tutor.tutor_id, Tutor.flagged)}
        changed = []
        _progress(batch, len(tutor_ids), 0)
        for done, tutor_id in enumerate(tutor_ids, start=1):
            after = rescore_tutor(services, tutor_id, through_today=True, cause=cause,
                                  only_rule=rule if enabled and rule in services.rules.rules else None)
            if after is not None and after.flagged != before.get(tutor_id):
                changed.append(tutor_id)
            if tutor_id in was_flagged:  # its results went with the rule: say the flag is gone, and why
                _cleared_by_disabling(tutor_id, rule, services.clock(), cause)
            if done % PROGRESS_EVERY == 0 or done == len(tutor_ids):
                _progress(batch, len(tutor_ids), done, services.clock() if done == len(tutor_ids) else None)
            if progress:
                progress(done, len(tutor_ids))
        if not tutor_ids:
            _progress(batch, 0, 0, services.clock())
    return SettingsRescore(len(tutor_ids), changed)


def _cleared_by_disabling(tutor_id: str, rule: str, now: dt.datetime, cause: Mapping[str, Any]) -> None:
    RiskEvent.insert(tutor=tutor_id, rule=rule, kind="cleared", day=day_of(now), occurred_at=now, severity="none",
                     explanation={"decision": "rule_disabled", SETTINGS_CHANGE: dict(cause)},
                     recorded_at=now).on_conflict_ignore().execute()


def _progress(batch: int, total: int, done: int, finished: dt.datetime | None = None) -> None:
    update: dict[Any, Any] = {SettingsChange.rescore_total: total, SettingsChange.rescore_done: done}
    if finished is not None:
        update[SettingsChange.rescore_finished_at] = finished
    SettingsChange.update(update).where(SettingsChange.batch == batch).execute()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
