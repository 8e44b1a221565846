"""Change rule settings at runtime: stored over the environment's, each change audited, then rescored.

A change is checked exactly as a variable is (:func:`engine.registry.parse_changes`, then a
load of the rules with it), stored with who made it, when and why in one transaction, and
then every tutor is rescored: from its last scored day on (earlier days keep the flags they
had; ``tqs backtest`` shows what they would have been), and the flags the change raises or
clears name it. Every rescore reads the latest settings first (see
:class:`engine.services.LiveRules`); reading the audit trail is :mod:`engine.audit`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import peewee

from engine.audit import Change, cause_of, history, stored_settings
from engine.db import is_postgres, write_transaction
from engine.logs import log_event
from engine.models import RiskEvent, RuleSettingValue, SettingsChange, Tutor, TutorScore
from engine.registry import ENABLED, effective_settings, parse_changes
from engine.rescoring import rescore_tutor
from engine.results import SETTINGS_CHANGE
from engine.services import Services
from engine.windows import day_of

MAX_REASON = 1000
_CHANGE_LOCK_KEY = 7_311_943  # arbitrary, constant: changes of settings, one at a time
PROGRESS_EVERY = 25  # tutors between two progress writes of a rescore after a change
log = logging.getLogger("tutor_quality.rules")


def _error_once_enabled(services: Services, rule: str, stored: Mapping[str, Mapping[str, str]]) -> str | None:
    """What would stop ``rule`` loading if it were switched on with these stored settings (a rule that is off
    is not checked when the rules load, so a change made while it is off is checked this way)."""
    enabled = {name: dict(values) for name, values in stored.items()}
    enabled.setdefault(rule, {})[ENABLED] = "true"
    try:
        rules = services.rules_with(enabled, strict=True)
    except ValueError as exc:
        return str(exc)
    failed = next((s for s in rules.statuses if s.name == rule and s.status == "failed"), None)
    return failed.error if failed else None


def change_settings(services: Services, rule: str, changes: Mapping[str, str | None], changed_by: str,
                    reason: str) -> list[Change]:
    """Check and store the changes of one rule's settings (``None``: back to the environment's value); empty
    when nothing would change.

    In one transaction, serialized with every other change: the stored values are read, the changes checked
    against them (each value, then every setting together), the rules loaded with them exactly as every process
    will load them (so a rule switched on whose variables are bad is refused), and only then written. ValueError
    says what is wrong, and then nothing is stored.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("give a reason for the change: it is kept in the audit trail")
    if len(reason) > MAX_REASON:
        raise ValueError(f"the reason is {len(reason)} characters; keep it under {MAX_REASON}")
    now = services.clock()
    with write_transaction(services.database):
        if is_postgres(services.database):
            services.database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_CHANGE_LOCK_KEY,))
        stored = stored_settings(services.database)
        before = services.rules_with(stored)
        parsed = parse_changes(before, rule, {str(k): None if v is None else str(v) for k, v in changes.items()})
        proposed = {name: dict(values) for name, values in stored.items()}
        own = proposed.setdefault(rule, {})
        for name, value in parsed.items():
            if value is None:
                own.pop(name, None)
            else:
                own[name] = value
        try:
            after = services.rules_with(proposed, strict=True)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        failed = next((s for s in after.statuses if s.name == rule and s.status == "failed"), None)
        if failed and parsed.get(ENABLED) == "true":
            raise ValueError(f"rule {rule!r} cannot be switched on: {failed.error}")
        if any(s.name == rule and s.status == "disabled" for s in after.statuses):
            broken = _error_once_enabled(services, rule, proposed)
            if broken and not _error_once_enabled(services, rule, stored):
                raise ValueError(f"rule {rule!r} is off, but these settings could never switch it on: {broken}")
        old, new = effective_settings(before, rule), effective_settings(after, rule)
        made = [(name, old.get(name, "-"), new.get(name, "-") + ("" if value is not None else " (environment)"))
                for name, value in parsed.items()
                if old.get(name) != new.get(name) or (value is None and name in stored.get(rule, {}))]
        if not made:
            return []
        batch = None
        for name, was, becomes in made:
            if parsed[name] is None:
                RuleSettingValue.delete().where((RuleSettingValue.rule == rule) & (RuleSettingValue.name == name)
                                                ).execute()
            else:
                RuleSettingValue.insert(rule=rule, name=name, value=parsed[name], changed_at=now).on_conflict(
                    conflict_target=[RuleSettingValue.rule, RuleSettingValue.name],
                    update={RuleSettingValue.value: parsed[name], RuleSettingValue.changed_at: now}).execute()
            row = SettingsChange.create(rule=rule, name=name, old_value=was, new_value=becomes,
                                        changed_by=changed_by, changed_at=now, reason=reason, batch=batch or 0)
            if batch is None:
                batch = row.id
                SettingsChange.update(batch=batch).where(SettingsChange.id == row.id).execute()
    services.refresh_rules()
    made_changes = history(services.database, rule, batch=batch)
    for change in made_changes:
        log_event(log, "rule_setting_changed", rule=rule, setting=change.name, old=change.old_value,
                  new=change.new_value, changed_by=changed_by, batch=batch)
    return made_changes


def claim_stalled_batches(database: peewee.Database, older_than: dt.timedelta, now: dt.datetime) -> list[int]:
    """Changes whose rescore has not moved for ``older_than``: never started (its task was lost, or the queue
    was down) or stopped part-way (a worker died, Ctrl-C). Claimed by marking them moved now, so two sweepers
    do not queue one twice; rescoring again is harmless (a rescore writes only what changed)."""
    cutoff = now - older_than
    stalled = SettingsChange.rescore_finished_at.is_null() & (
        (SettingsChange.rescore_updated_at.is_null() & (SettingsChange.changed_at < cutoff))
        | (SettingsChange.rescore_updated_at < cutoff))
    with write_transaction(database):
        batches = sorted({row.batch for row in SettingsChange.select(SettingsChange.batch).where(stalled)})
        if batches:
            SettingsChange.update(rescore_updated_at=now).where(SettingsChange.batch.in_(batches)).execute()
    return batches


@dataclass(frozen=True)
class SettingsRescore:
    """What the rescore after a change did: tutors rescored, and those whose flag it raised or cleared."""

    tutors: int
    changed: list[str]


def rescore_after_change(services: Services, batch: int,
                         progress: Callable[[int, int], None] | None = None) -> SettingsRescore:
    """Rescore every tutor under the settings of ``batch``, recording how far it got in the audit trail.

    Each tutor's series is rolled forward from its last scored day to today under the new settings (the
    days before keep their flags); the flags raised or cleared name the change (see :func:`causes_since`).
    Enabling a rule computes its whole history.
    """
    changes = history(services.database, batch=batch)
    if not changes:
        raise ValueError(f"no settings change {batch}")
    services.refresh_rules()
    rule = changes[0].rule
    switched = {c.new_value.split(" ")[0] for c in changes if c.name == ENABLED}
    cause = cause_of(changes[0], changes)
    with services.database.connection_context():
        tutor_ids = [t.tutor_id for t in Tutor.select(Tutor.tutor_id).order_by(Tutor.tutor_id)]
        was_flagged = {s.tutor_id for s in TutorScore.select(TutorScore.tutor).where(
            (TutorScore.rule == rule) & (TutorScore.flagged == True))} if "false" in switched else set()  # noqa: E712
        before = {t.tutor_id: t.flagged for t in Tutor.select(Tutor.tutor_id, Tutor.flagged)}
        changed = []
        _progress(batch, len(tutor_ids), 0, services.clock())
        for done, tutor_id in enumerate(tutor_ids, start=1):
            after = rescore_tutor(services, tutor_id, through_today=True,
                                  only_rule=rule if "true" in switched and rule in services.rules.rules else None)
            if tutor_id in was_flagged:  # its results went with the rule: say the flag is gone, and why
                _cleared_by_disabling(tutor_id, rule, services.clock(), cause)
            if after is not None and after.flagged != before.get(tutor_id):
                changed.append(tutor_id)
            if done % PROGRESS_EVERY == 0 or done == len(tutor_ids):
                _progress(batch, len(tutor_ids), done, services.clock(), finished=done == len(tutor_ids))
            if progress:
                progress(done, len(tutor_ids))
        if not tutor_ids:
            _progress(batch, 0, 0, services.clock(), finished=True)
    return SettingsRescore(len(tutor_ids), changed)


def _cleared_by_disabling(tutor_id: str, rule: str, now: dt.datetime, cause: Mapping[str, Any]) -> None:
    RiskEvent.insert(tutor=tutor_id, rule=rule, kind="cleared", day=day_of(now), occurred_at=now, severity="none",
                     explanation={"decision": "rule_disabled", SETTINGS_CHANGE: dict(cause)},
                     recorded_at=now).on_conflict_ignore().execute()


def _progress(batch: int, total: int, done: int, now: dt.datetime, finished: bool = False) -> None:
    update: dict[Any, Any] = {SettingsChange.rescore_total: total, SettingsChange.rescore_done: done,
                              SettingsChange.rescore_updated_at: now}
    if finished:
        update[SettingsChange.rescore_finished_at] = now
    SettingsChange.update(update).where(SettingsChange.batch == batch).execute()


