"""Score one tutor against the database: load its history, run the series, write what changed.

Callers hold the tutor's lock inside a transaction (see :mod:`engine.pipeline`).
Snapshots are written for the days whose values changed, only up to the tutor's
latest session day (the periodic rescore rolls them forward to today), so a 90-day
backfill writes about one snapshot row per session rather than ninety.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable

import peewee
import pluggy

from engine.config import Settings
from engine.db import take_new_values
from engine.models import (
    Reschedule,
    RiskEvent,
    ScoreSnapshot,
    Session,
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorScore,
)
from engine.rulekit import Advice
from engine.series import RiskTransition, SeriesPoint, compute_series, transitions
from engine.windows import (
    COUNT_FIELDS,
    MAX_WINDOW_DAYS,
    ONE_DAY,
    Counts,
    DailyCounts,
    RescheduleFact,
    SessionFact,
    TutorHistory,
    day_of,
    session_counts,
    start_of_day,
)

# Daily history is kept for about 13 months: a session dated years back is stored and counted, but
# does not make the tutor's series be recomputed (and written) day by day from then.
HISTORY_HORIZON = dt.timedelta(days=400)


def recount_days(tutor_id: str, days: Iterable[dt.date]) -> None:
    """Rebuild some tutor-days of counts from their sessions in one read (a day left empty loses its row)."""
    days = sorted(set(days))
    if not days:
        return
    totals = {day: Counts() for day in days}
    for fact in load_sessions_between(tutor_id, start_of_day(days[0]), start_of_day(days[-1] + dt.timedelta(days=1))):
        day = day_of(fact.scheduled_time)
        if day in totals:
            totals[day] += fact.counts
    empty = [day for day, total in totals.items() if total.sessions == 0]
    if empty:
        TutorDailyCount.delete().where((TutorDailyCount.tutor == tutor_id) & TutorDailyCount.day.in_(empty)).execute()
    rows = [dict(tutor=tutor_id, day=day, **total.as_dict()) for day, total in totals.items() if total.sessions]
    if rows:
        update = take_new_values(TutorDailyCount, COUNT_FIELDS)
        TutorDailyCount.insert_many(rows).on_conflict(
            conflict_target=[TutorDailyCount.tutor, TutorDailyCount.day], update=update
        ).execute()


def load_sessions_on(tutor_id: str, days: list[dt.date]) -> dict[dt.date, list[SessionFact]]:
    """The tutor's sessions on the given UTC days, in one query."""
    on_days = functools.reduce(operator.or_, [
        (Session.scheduled_time >= start_of_day(day)) & (Session.scheduled_time < start_of_day(day + ONE_DAY))
        for day in days
    ])
    found: dict[dt.date, list[SessionFact]] = {day: [] for day in days}
    for fact in _session_facts((Session.tutor == tutor_id) & on_days):
        found[day_of(fact.scheduled_time)].append(fact)
    return found


def load_sessions_between(tutor_id: str, start: dt.datetime, end: dt.datetime) -> list[SessionFact]:
    """The tutor's sessions scheduled in [start, end), reduced to what counting needs."""
    return _session_facts(
        (Session.tutor == tutor_id) & (Session.scheduled_time >= start) & (Session.scheduled_time < end)
    )


def _session_facts(where: peewee.Expression) -> list[SessionFact]:
    query = (
        Session.select(Session.scheduled_time, Session.status, Session.is_first_session, Reschedule.initiator)
        .join(Reschedule, peewee.JOIN.LEFT_OUTER, on=(Reschedule.session == Session.session_id))
        .where(where)
        .objects()
    )
    return [
        SessionFact(row.scheduled_time, session_counts(row.status, row.initiator, row.is_first_session))
        for row in query
    ]


def load_reschedules(tutor_id: str, after: dt.datetime, until: dt.datetime) -> list[RescheduleFact]:
    query = (
        Reschedule.select(Reschedule, Session.scheduled_time)
        .join(Session, on=(Reschedule.session == Session.session_id))
        .where(
            (Reschedule.tutor == tutor_id) & (Session.scheduled_time > after) & (Session.scheduled_time <= until)
        )
        .objects()
    )
    return [
        RescheduleFact(
            session_id=row.session_id, scheduled_time=row.scheduled_time, initiator=row.initiator,
            reason=row.reason, original_time=row.original_time, new_time=row.new_time,
            requested_at=row.requested_at, notice_seconds=row.notice_seconds, delay_seconds=row.delay_seconds,
        )
        for row in query
    ]


def load_history(tutor: Tutor, first_day: dt.date, last_day: dt.date) -> TutorHistory:
    """Daily counts wide enough for every window of every day from ``first_day`` to ``last_day``."""
    since = first_day - dt.timedelta(days=MAX_WINDOW_DAYS)
    rows = TutorDailyCount.select().where(
        (TutorDailyCount.tutor == tutor.tutor_id) & (TutorDailyCount.day >= since) & (TutorDailyCount.day <= last_day)
    )
    by_day = {row.day: Counts(*(getattr(row, name) for name in COUNT_FIELDS)) for row in rows}
    return TutorHistory(
        tutor.tutor_id,
        tutor.name,
        DailyCounts(by_day, since, last_day),
        load_sessions=lambda days: load_sessions_on(tutor.tutor_id, days),
        load_reschedules=lambda after, until: load_reschedules(tutor.tutor_id, after, until),
    )


def first_session_day(tutor_id: str) -> dt.date | None:
    first = TutorDailyCount.select(peewee.fn.MIN(TutorDailyCount.day)).where(TutorDailyCount.tutor == tutor_id)
    return first.scalar()


def score_tutor(
    pm: pluggy.PluginManager,
    settings: Settings,
    tutor: Tutor,
    changed_from: dt.date,
    now: dt.datetime,
    snapshot_through_today: bool = False,
) -> SeriesPoint:
    """Recompute the tutor's series from ``changed_from`` (or its last snapshot, if earlier) to now,
    and write what changed. Returns the current point.

    Time only moves forward for a tutor: a ``now`` earlier than its last scoring (a worker that
    waited for the lock, a clock behind another's) is taken as that moment instead.
    """
    now = max(now, tutor.scored_at or now)
    today = day_of(now)
    start = max(min(changed_from, tutor.series_through or changed_from, today), today - HISTORY_HORIZON)
    history = load_history(tutor, start, today)
    latest = history.daily.last_active or start
    persist_end = today if snapshot_through_today else min(max(latest, tutor.series_through or start, start), today)
    existing = {
        row.day: row
        for row in ScoreSnapshot.select().where(
            (ScoreSnapshot.tutor == tutor.tutor_id)
            & (ScoreSnapshot.day >= start - dt.timedelta(days=1))
            & (ScoreSnapshot.day <= persist_end)
        )
    }
    before = existing.get(start - dt.timedelta(days=1))
    previous_flags = dict(before.flags) if before else {}
    points = compute_series(pm, settings, history, start, now, previous_flags)
    _write_snapshots(tutor.tutor_id, [p for p in points if p.day <= persist_end], existing)
    _write_events(tutor.tutor_id, start, transitions(points, previous_flags), now)
    current = points[-1]
    _write_current(pm, settings, tutor, history, current, now)
    tutor.series_through = max(persist_end, tutor.series_through or persist_end)
    tutor.flagged = current.flagged
    tutor.risk_score = max((a.risk_score for a in current.assessments.values()), default=0.0)
    tutor.scored_at = now
    tutor.save()
    return current


def _write_snapshots(tutor_id: str, points: Iterable[SeriesPoint], existing: dict[dt.date, ScoreSnapshot]) -> None:
    changed = []
    for point in points:
        old = existing.get(point.day)
        metrics, flags = point.metrics, point.flags
        if old and old.as_of == point.as_of and old.metrics == metrics and old.flags == flags:
            continue
        changed.append(
            dict(tutor=tutor_id, day=point.day, as_of=point.as_of, metrics=metrics, flags=flags, flagged=point.flagged)
        )
    if changed:
        update = take_new_values(ScoreSnapshot, ("as_of", "metrics", "flags", "flagged"))
        (
            ScoreSnapshot.insert_many(changed)
            .on_conflict(conflict_target=[ScoreSnapshot.tutor, ScoreSnapshot.day], update=update)
            .execute()
        )


def _write_events(tutor_id: str, start: dt.date, found: list[RiskTransition], now: dt.datetime) -> None:
    """Make the stored events from ``start`` on equal the derived ones, keeping rows that still hold exactly."""
    stored = {
        (e.rule, e.kind, e.day): e
        for e in RiskEvent.select().where((RiskEvent.tutor == tutor_id) & (RiskEvent.day >= start))
    }
    wanted = {(t.rule, t.kind, t.day): t for t in found}
    kept = {
        key for key, e in stored.items()
        if key in wanted and (e.severity, e.explanation) == (wanted[key].severity, wanted[key].explanation)
    }
    stale = [e.id for key, e in stored.items() if key not in kept]
    if stale:
        RiskEvent.delete().where(RiskEvent.id.in_(stale)).execute()
    fresh = [
        dict(
            tutor=tutor_id, rule=t.rule, kind=t.kind, day=t.day, occurred_at=t.occurred_at,
            severity=t.severity, explanation=t.explanation, recorded_at=now,
        )
        for key, t in wanted.items()
        if key not in kept
    ]
    if fresh:
        RiskEvent.insert_many(fresh).execute()


def _write_current(
    pm: pluggy.PluginManager, settings: Settings, tutor: Tutor, history: TutorHistory, current: SeriesPoint,
    now: dt.datetime,
) -> None:
    advice: dict[str, Advice] = {
        a.rule: a
        for a in pm.hook.advise_tutor(
            history=history, as_of=current.as_of, assessments=current.assessments, settings=settings
        )
    }
    scores = [
        dict(
            tutor=tutor.tutor_id, rule=rule, rule_version=a.version, flagged=a.flagged, severity=a.severity,
            risk_score=a.risk_score, explanation=a.explanation,
            insights=advice[rule].insights if rule in advice else [],
            recommendations=advice[rule].recommendations if rule in advice else [],
            as_of=current.as_of,
        )
        for rule, a in current.assessments.items()
    ]
    if scores:
        update = take_new_values(TutorScore, [f for f in scores[0] if f not in ("tutor", "rule")])
        TutorScore.insert_many(scores).on_conflict(
            conflict_target=[TutorScore.tutor, TutorScore.rule], update=update
        ).execute()
    stored = {m.name: m.value for m in TutorMetric.select().where(TutorMetric.tutor == tutor.tutor_id)}
    metrics = [
        dict(tutor=tutor.tutor_id, name=name, rule=rule, value=value)
        for rule, a in current.assessments.items()
        for name, value in a.metrics.items()
        if name not in stored or stored[name] != value
    ]
    if metrics:
        update = take_new_values(TutorMetric, ("value", "rule"))
        TutorMetric.insert_many(metrics).on_conflict(
            conflict_target=[TutorMetric.tutor, TutorMetric.name], update=update
        ).execute()


def clear_derived(tutor_id: str) -> None:
    """Forget everything derived for a tutor, so it can be rebuilt from its sessions."""
    for model in (ScoreSnapshot, RiskEvent, TutorScore, TutorMetric, TutorDailyCount):
        model.delete().where(model.tutor == tutor_id).execute()


def recount_all_days(tutor_id: str) -> None:
    days = {
        day_of(row.scheduled_time)
        for row in Session.select(Session.scheduled_time).where(Session.tutor == tutor_id)
    }
    recount_days(tutor_id, days)
