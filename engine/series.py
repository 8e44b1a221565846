"""Run every rule over a tutor's days: the event-time daily series and the flags it raises or clears.

Pure computation, no database: the same history gives the same series whatever order
the sessions arrived in. The last point is as of ``now`` (today is still running).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from engine.config import Settings
from engine.rulekit import Assessment
from engine.windows import TutorHistory, day_of, days_between, snapshot_moment


@dataclass(frozen=True)
class SeriesPoint:
    """Every rule's assessment of one tutor for one day."""

    day: dt.date
    as_of: dt.datetime
    assessments: dict[str, Assessment]

    @property
    def flags(self) -> dict[str, bool]:
        return {rule: a.flagged for rule, a in self.assessments.items()}

    @property
    def flagged(self) -> bool:
        return any(a.flagged for a in self.assessments.values())

    @property
    def metrics(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
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


def compute_series(
    pm: pluggy.PluginManager,
    settings: Settings,
    history: TutorHistory,
    first_day: dt.date,
    now: dt.datetime,
    previous_flags: Mapping[str, bool],
) -> list[SeriesPoint]:
    """One point per day from ``first_day`` to today, each rule seeing its own flag of the day before."""
    points: list[SeriesPoint] = []
    flags = dict(previous_flags)
    for day in days_between(min(first_day, day_of(now)), day_of(now)):
        as_of = snapshot_moment(day, now)
        results = pm.hook.assess_tutor(history=history, as_of=as_of, previously_flagged=flags, settings=settings)
        point = SeriesPoint(day, as_of, {a.rule: a for a in results})
        points.append(point)
        flags = point.flags
    return points


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
        flags = point.flags
    return found
