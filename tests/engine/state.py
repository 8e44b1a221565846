"""Read back everything the pipeline derives, in a comparable form (ids and arrival times left out)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.models import (
    RiskEvent,
    ScoreSnapshot,
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorMetricSet,
    TutorScore,
)
from engine.windows import TOTALS


def derived_state(database, snapshots_through: dict[str, dt.date] | None = None) -> dict[str, Any]:
    """Scores, metrics, daily counts and all-time totals, risk events and snapshots; ``snapshots_through``
    limits snapshot days per tutor."""
    with database.connection_context():
        snapshots = sorted(
            (s.tutor_id, s.day, s.as_of, tuple(sorted(s.metrics.items())), tuple(sorted(s.flags.items())), s.flagged)
            for s in ScoreSnapshot.select()
            if snapshots_through is None or s.day <= snapshots_through.get(s.tutor_id, dt.date.min)
        )
        rows = list(TutorMetric.select())
        metrics = sorted((m.tutor_id, m.name, m.value) for m in rows)
        grouped: dict[str, dict[str, dict[str, Any]]] = {}
        for m in rows:
            grouped.setdefault(m.tutor_id, {}).setdefault(m.rule, {})[m.name] = m.value
        # the one-row set scoring compares with and a page reads holds exactly the rows sorting reads
        assert {row.tutor_id: row.metrics for row in TutorMetricSet.select()} == grouped
        return {
            "tutors": sorted((t.tutor_id, t.flagged, t.risk_score) for t in Tutor.select()),
            "scores": sorted(
                (s.tutor_id, s.rule, s.flagged, s.severity, s.risk_score, repr(s.explanation), repr(s.insights),
                 repr(s.recommendations), s.as_of)
                for s in TutorScore.select()
            ),
            "metrics": metrics,
            "daily": sorted(tuple(row.values()) for row in TutorDailyCount.select().dicts()),
            "totals": sorted(Tutor.select(Tutor.tutor_id, *(Tutor._meta.fields[column] for column in TOTALS)).tuples()),
            "events": sorted(
                (e.tutor_id, e.rule, e.kind, e.day, e.severity, repr(e.explanation)) for e in RiskEvent.select()
            ),
            "snapshots": snapshots,
        }


def series_through(database) -> dict[str, dt.date]:
    with database.connection_context():
        return {t.tutor_id: t.series_through for t in Tutor.select()}
