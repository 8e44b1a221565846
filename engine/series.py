"""Run every rule over a tutor's days: the event-time daily series and the flags it raises or clears.

Pure computation, no database: the same history gives the same series whatever order
the sessions arrived in. The last point is as of ``now`` (today is still running).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.rulekit import Assessment
from engine.ruleset import RuleError, RuleSet
from engine.windows import TutorHistory, day_of, days_between, snapshot_moment


@dataclass(frozen=True)
class SeriesPoint:
    """Every rule's assessment of one tutor for one day, and what the engine itself measures."""

    day: dt.date
    as_of: dt.datetime
    assessments: dict[str, Assessment]
    activity: dict[str, Any] = field(default_factory=dict)

    @property
    def flags(self) -> dict[str, bool]:
        return {rule: a.flagged for rule, a in self.assessments.items()}

    @property
    def flagged(self) -> bool:
        return any(a.flagged for a in self.assessments.values())

    @property
    def metrics(self) -> dict[str, Any]:
        merged: dict[str, Any] = dict(self.activity)
        for assessment in self.assessments.values():
            merged.update(assessment.metrics)
        return merged


@dataclass(frozen=True)
class RiskTransition:
    """A flag raised or cleared on an event-time day."""

    rule: str
    kind: str  # "raised" | "cleared"
    day: dt.date
    occurred_at: dt.datetime
    severity: str
    explanation: dict[str, Any]


@dataclass(frozen=True)
class Series:
    """The points, and the rules that failed on this tutor (left out of every point)."""

    points: list[SeriesPoint]
    failures: dict[str, RuleError]


def compute_series(
    rules: RuleSet,
    history: TutorHistory,
    first_day: dt.date,
    now: dt.datetime,
    previous_flags: Mapping[str, bool],
    only: frozenset[str] | None = None,
) -> Series:
    """One point per day from ``first_day`` to today, each rule seeing its own flag of the day before.

    A rule that fails on any day is left out of the whole series (its stored results stay as
    they were), so a tutor's series never mixes a rule's fresh and stale days.
    """
    running = [name for name in rules.names if only is None or name in only]
    failures: dict[str, RuleError] = {}
    points: list[SeriesPoint] = []
    flags = dict(previous_flags)
    for day in days_between(min(first_day, day_of(now)), day_of(now)):
        as_of = snapshot_moment(day, now)
        assessments = {}
        for name in running:
            if name in failures:
                continue
            try:
                assessments[name] = rules.assess(name, history, as_of, flags.get(name, False))
            except RuleError as exc:
                failures[name] = exc
        point = SeriesPoint(day, as_of, assessments, rules.engine_metrics(history, as_of))
        points.append(point)
        flags.update(point.flags)
    if failures:
        points = [replace(p, assessments={k: a for k, a in p.assessments.items() if k not in failures})
                  for p in points]
    return Series(points, failures)


def transitions(points: list[SeriesPoint], previous_flags: Mapping[str, bool]) -> list[RiskTransition]:
    """Every change of a rule's flag along the series."""
    found: list[RiskTransition] = []
    flags = dict(previous_flags)
    for point in points:
        for rule, assessment in point.assessments.items():
            if assessment.flagged != flags.get(rule, False):
                kind = "raised" if assessment.flagged else "cleared"
                found.append(
                    RiskTransition(rule, kind, point.day, point.as_of, assessment.severity, assessment.explanation)
                )
        flags.update(point.flags)
    return found
