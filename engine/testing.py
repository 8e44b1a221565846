"""Test a rule in a few lines, without a database: build a history, run the rule the way the engine does.

    from engine.testing import completed, no_show, run_rule
    result = run_rule(my_rule, [completed(NOW - days(3)), no_show(NOW - days(1))], NOW, threshold=20)
    assert result.assessment.flagged

:func:`run_rule` loads the rule through the engine's own registry (settings validated as
at start-up) and runs it through the engine's own checks, so a test fails the way
production would: an undeclared metric or a bad setting is an error here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from engine.config import Settings
from engine.registry import load_rules, setting_variable
from engine.rulekit import Advice, Assessment, RuleSettings, SettingValue
from engine.ruleset import RuleSet
from engine.windows import RescheduleFact, SessionFact, TutorHistory, history_in_memory, session_counts

__all__ = ["RuleRun", "completed", "days", "history", "load_rule", "no_show", "reschedule", "rescheduled",
           "run_rule", "session"]


def days(count: float) -> dt.timedelta:
    return dt.timedelta(days=count)


def session(when: dt.datetime, status: str = "completed", initiator: str | None = None,
            first: bool = False) -> SessionFact:
    """A session as a rule counts it: when it was scheduled, how it went, whether it was a first session."""
    return SessionFact(when, session_counts(status, initiator, first))


def completed(when: dt.datetime, first: bool = False) -> SessionFact:
    return session(when, "completed", first=first)


def no_show(when: dt.datetime, first: bool = False) -> SessionFact:
    return session(when, "no_show", first=first)


def rescheduled(when: dt.datetime, by: str = "tutor", first: bool = False) -> SessionFact:
    return session(when, "rescheduled", by, first)


def reschedule(when: dt.datetime, by: str = "tutor", reason: str | None = "personal", notice_hours: float = 48,
               moved_by: dt.timedelta = dt.timedelta(days=1), session_id: str | None = None) -> RescheduleFact:
    """The details of a rescheduled session (pass them to :func:`history` beside the session itself)."""
    return RescheduleFact(session_id or f"s-{when:%Y%m%d%H%M%S}", when, by, reason, when, when + moved_by,
                          when - dt.timedelta(hours=notice_hours), int(notice_hours * 3600),
                          int(moved_by.total_seconds()))


def history(sessions: Iterable[SessionFact], reschedules: Iterable[RescheduleFact] = (), tutor_id: str = "t1",
            name: str | None = None) -> TutorHistory:
    """A tutor's history over plain lists, exactly as the engine hands it to a rule."""
    return history_in_memory(tutor_id, sessions, reschedules, name)


def load_rule(plugin: object, **settings: SettingValue) -> RuleSet:
    """The rule alone, loaded as the engine loads it, with settings given by name (``threshold=20``)."""
    name = plugin.describe_rule().name  # type: ignore[attr-defined]
    env = {setting_variable(name, key): str(value).lower() if isinstance(value, bool) else str(value)
           for key, value in settings.items()}
    rules = load_rules(Settings(rule_env=env), extra_plugins=(plugin,), entry_points=False)
    if name not in rules.rules:
        raise AssertionError(f"rule {name!r} did not load: {rules.failed.get(name)}")
    return rules


@dataclass(frozen=True)
class RuleRun:
    """What the engine got from the rule: its checked assessment, its advice, and its settings."""

    assessment: Assessment
    advice: Advice
    settings: RuleSettings


def run_rule(plugin: object, sessions: Iterable[SessionFact] | TutorHistory, as_of: dt.datetime, *,
             reschedules: Iterable[RescheduleFact] = (), was_flagged: bool = False,
             **settings: SettingValue) -> RuleRun:
    """Assess and advise one tutor as of ``as_of``, through the engine's checks (a :class:`RuleError` if the
    rule raises or returns something the engine would refuse)."""
    rules = load_rule(plugin, **settings)
    name = rules.names[0]
    tutor = sessions if isinstance(sessions, TutorHistory) else history(sessions, reschedules)
    assessment = rules.assess(name, tutor, as_of, was_flagged)
    advice = rules.advise(name, tutor, as_of, {name: assessment})
    return RuleRun(assessment, advice, rules.rules[name].settings)
