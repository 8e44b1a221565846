"""The one read layer: tutors listed, one tutor in detail, one tutor's history.

The CLI, the API and the dashboard all read through here; no SQL lives anywhere else.
A tutor record is the tutor's id, name, flag, risk score and update time plus every
metric the engine measures (``sessions_7d`` ...) and every metric of every loaded rule,
so a new rule's metrics show up everywhere without touching readers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from engine.models import (
    EmailReport,
    InboxItem,
    Reschedule,
    RescoreWaiting,
    RiskEvent,
    RuleFailure,
    ScoreSnapshot,
    Session,
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorScore,
    database_proxy,
)
from engine.rulekit import MetricNames
from engine.sql import Sql
from engine.validation import storable
from engine.windows import ONE_DAY, days_between

DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_OFFSET = 2**31 - 1  # beyond this the database's integers overflow
DEFAULT_HISTORY_DAYS = 90
MAX_HISTORY_DAYS = 3650
MAX_SEARCH = 200
RECENT_RESCHEDULES = 10
BASE_SORTS = ("risk_score", "flagged", "updated_at", "tutor_id", "name")


class QueryError(ValueError):
    """A bad query parameter: ``parameter`` names it, ``message`` says what it must be."""

    def __init__(self, parameter: str, message: str):
        self.parameter, self.message = parameter, message
        super().__init__(f"{parameter}: {message}")


@dataclass(frozen=True)
class TutorPage:
    tutors: list[dict[str, Any]]
    total: int


def sortable_fields(metric_names: Iterable[str]) -> list[str]:
    return [*BASE_SORTS, *metric_names]


def list_tutors(
    metric_names: MetricNames,
    flagged: bool | None = None,
    search: str | None = None,
    sort: str = "-risk_score",
    limit: int = DEFAULT_PAGE,
    offset: int = 0,
) -> TutorPage:
    """Tutors with their scores, filtered, searched, sorted (``-`` for descending, nulls last) and paged.

    Ties go riskiest first, then by id, so every page of one query is stable; on a metric, by id (see
    :func:`_page_by_metric`), and tutors without a value come last either way.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError("limit", f"Must be between 1 and {MAX_PAGE}")
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError("offset", f"Must be between 0 and {MAX_OFFSET}")
    if search is not None and (len(search) > MAX_SEARCH or not storable(search)):
        raise QueryError("q", f"Must be at most {MAX_SEARCH} characters, without NUL characters")
    descending, field = sort.startswith("-"), sort.lstrip("-")
    if field not in sortable_fields(metric_names):
        raise QueryError("sort", f"Unknown field {field!r}; use one of {', '.join(sortable_fields(metric_names))}")
    condition = _tutor_filter(flagged, search)
    total = Tutor.select().where(condition).count()
    if field in BASE_SORTS:
        ids = _page_by_tutor_column(field, descending, condition, limit, offset)
    else:
        ids = _page_by_metric(field, descending, condition, limit, offset)
    return TutorPage(_records(ids, metric_names), total)


def _tutor_filter(flagged: bool | None, search: str | None) -> peewee.Expression:
    condition: peewee.Expression = peewee.Value(True)
    if flagged is not None:
        condition &= Tutor.flagged == flagged
    if search:
        condition &= Tutor.tutor_id.contains(search) | Tutor.name.contains(search)
    return condition


def _page_by_tutor_column(field: str, descending: bool, condition, limit: int, offset: int) -> list[str]:
    column = Tutor.scored_at if field == "updated_at" else getattr(Tutor, field)
    nulls = "LAST" if column.null else None  # on a NOT NULL column the plain order is the one its index has
    order = column.desc(nulls=nulls) if descending else column.asc(nulls=nulls)
    query = Tutor.select(Tutor.tutor_id).where(condition)
    return [row[0] for row in query.order_by(order, Tutor.risk_score.desc(), Tutor.tutor_id)
            .limit(limit).offset(offset).tuples()]


def _page_by_metric(name: str, descending: bool, condition, limit: int, offset: int) -> list[str]:
    """Tutors with a value, in its order and then by id (descending is ascending reversed: one index read
    from either end, so a page costs its own rows); then those without one, riskiest first."""
    metric = TutorMetric
    ranked = (metric.select(metric.tutor).join(Tutor, on=(Tutor.tutor_id == metric.tutor))
              .where(condition & (metric.name == name) & metric.value.is_null(False)))
    order = (metric.value.desc(), metric.tutor.desc()) if descending else (metric.value.asc(), metric.tutor.asc())
    ids = [row[0] for row in ranked.order_by(*order).limit(limit).offset(offset).tuples()]
    if len(ids) == limit:
        return ids
    skipped = 0 if ids else max(0, offset - ranked.count())
    # NOT IN, not NOT EXISTS: one read of the metric's index into a hash, where Postgres would otherwise probe
    # tutor_metrics once per tutor (66 ms for the last page of 10,000)
    with_value = TutorMetric.select(TutorMetric.tutor).where((TutorMetric.name == name)
                                                             & TutorMetric.value.is_null(False))
    unvalued = (Tutor.select(Tutor.tutor_id).where(condition & Tutor.tutor_id.not_in(with_value))
                .order_by(Tutor.risk_score.desc(), Tutor.tutor_id).limit(limit - len(ids)).offset(skipped))
    return ids + [row[0] for row in unvalued.tuples()]


def get_tutor_record(tutor_id: str, metric_names: MetricNames) -> dict[str, Any] | None:
    if not storable(tutor_id):  # no stored id holds such text, and Postgres would fail the comparison
        return None
    records = _records([tutor_id], metric_names)
    return records[0] if records else None


def get_tutor_detail(tutor_id: str, metric_names: MetricNames) -> dict[str, Any] | None:
    """The tutor record plus every rule's flag and advice, recent reschedules and a status summary."""
    record = get_tutor_record(tutor_id, metric_names)
    if record is None:
        return None
    scores = TutorScore.select().where(TutorScore.tutor == tutor_id).order_by(TutorScore.rule)
    if metric_names.rules is not None:
        scores = scores.where(TutorScore.rule.in_(metric_names.rules or ("",)))
    scores = sorted(scores, key=lambda score: _rule_order(metric_names, score.rule))
    failures = {f.rule: f for f in RuleFailure.select().where(RuleFailure.tutor == tutor_id)}
    record["flags"] = [
        dict(rule=s.rule, rule_version=s.rule_version, flagged=s.flagged, severity=s.severity,
             risk_score=s.risk_score, explanation=s.explanation, as_of=_iso(s.as_of),
             **_staleness(s.rule, failures, metric_names))
        for s in scores
    ]
    record["insights"] = [line for s in scores for line in s.insights]
    record["recommendations"] = [line for s in scores for line in s.recommendations]
    record["recent_reschedules"] = [_reschedule(r) for r in _reschedules(tutor_id).limit(RECENT_RESCHEDULES)]
    record["session_summary"] = _session_summary(tutor_id)
    return record


def _rule_order(metric_names: MetricNames, rule: str) -> tuple[int, str]:
    """Rules in the order they are listed (rank, then name); rules no longer loaded last."""
    shown = metric_names.rules or ()
    return (shown.index(rule) if rule in shown else len(shown), rule)


def _staleness(rule: str, failures: dict[str, RuleFailure], metric_names: MetricNames) -> dict[str, Any]:
    """``stale`` when the rule could not score the tutor lately: its result is the last one it gave."""
    if rule in failures:
        failure = failures[rule]
        return {"stale": True, "error": failure.error, "failing_since": _iso(failure.failed_at)}
    if rule in metric_names.failed:
        return {"stale": True, "error": "the rule failed to load (see tqs rules)", "failing_since": None}
    return {"stale": False}


def rule_failures() -> dict[str, dict[str, Any]]:
    """Per rule, how many tutors it currently fails on, and its latest error."""
    found: dict[str, dict[str, Any]] = {}
    for row in RuleFailure.select().order_by(RuleFailure.failed_at):
        entry = found.setdefault(row.rule, {"tutors": 0})
        entry.update(tutors=entry["tutors"] + 1, last_error=row.error, last_failed_at=_iso(row.failed_at))
    return found


def stored_rule_versions() -> dict[str, dict[str, int]]:
    """Per rule, how many tutors' current scores each version of it wrote."""
    rows = (TutorScore.select(TutorScore.rule, TutorScore.rule_version, peewee.fn.COUNT(TutorScore.tutor))
            .group_by(TutorScore.rule, TutorScore.rule_version).tuples())
    found: dict[str, dict[str, int]] = {}
    for rule, version, count in rows:
        found.setdefault(rule, {})[version] = count
    return found


def get_tutor_history(
    tutor_id: str, days: int, today: dt.date, metric_names: MetricNames
) -> dict[str, Any] | None:
    """One point per day for the last ``days`` days, and the tutor's reschedule and risk events.

    Days not snapshotted (before the first session, or not yet rolled forward) have null metrics;
    their flag follows from the risk events.
    """
    if not 1 <= days <= MAX_HISTORY_DAYS:
        raise QueryError("days", f"Must be between 1 and {MAX_HISTORY_DAYS}")
    if not storable(tutor_id) or not Tutor.select().where(Tutor.tutor_id == tutor_id).exists():
        return None
    first = today - dt.timedelta(days=days - 1)
    snapshots = {
        s.day: s
        for s in ScoreSnapshot.select().where(
            (ScoreSnapshot.tutor == tutor_id) & (ScoreSnapshot.day >= first) & (ScoreSnapshot.day <= today)
        )
    }
    risk_events = list(
        RiskEvent.select().where(RiskEvent.tutor == tutor_id).order_by(RiskEvent.day, RiskEvent.id)
    )
    points = []
    for day in days_between(first, today):
        snapshot = snapshots.get(day)
        point: dict[str, Any] = {"date": day.isoformat(), **dict.fromkeys(metric_names)}
        point.update(snapshot.metrics if snapshot else {})
        point["flagged"] = snapshot.flagged if snapshot else _flag_on(day, risk_events)
        point["flags"] = dict(snapshot.flags) if snapshot else {}
        points.append(point)
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    events = [
        {"type": "reschedule", **_reschedule(r)}
        for r in _reschedules(tutor_id).where(Session.scheduled_time >= since)
    ] + [_risk_event(e) for e in risk_events if e.day >= first]
    events.sort(key=lambda e: e["at"])
    return {"tutor_id": tutor_id, "days": days, "points": points, "events": events}


def _flag_on(day: dt.date, events: list[RiskEvent]) -> bool:
    """A tutor's overall flag on a day: any rule whose last event by then was a raise."""
    state: dict[str, bool] = {}
    for event in events:
        if event.day > day:
            break
        state[event.rule] = event.kind == "raised"
    return any(state.values())


def _records(ids: Sequence[str], metric_names: MetricNames) -> list[dict[str, Any]]:
    """The records of these tutors, in this order (plain rows: a page of 50 holds some 2,000 metric values)."""
    if not ids:
        return []
    tutors = {row[0]: row for row in Tutor.select(Tutor.tutor_id, Tutor.name, Tutor.flagged, Tutor.risk_score,
                                                  Tutor.scored_at).where(Tutor.tutor_id.in_(ids)).tuples()}
    if not tutors:
        return []
    values: dict[str, dict[str, float | None]] = {tutor_id: {} for tutor_id in tutors}
    flagged_by: dict[str, list[str]] = {tutor_id: [] for tutor_id in tutors}
    sql = Sql(database_proxy.obj)  # raw rows: Peewee's per-value conversion was most of a page's time
    for tutor_id, name, value in sql.all(f"SELECT tutor_id, name, value FROM tutor_metrics "
                                         f"WHERE tutor_id IN ({sql.marks(len(tutors))})", list(tutors)):
        values[tutor_id][name] = value
    flags = TutorScore.select(TutorScore.tutor, TutorScore.rule).where(
        TutorScore.tutor.in_(list(tutors)) & TutorScore.flagged)
    for tutor_id, rule in sorted(flags.tuples(), key=lambda row: _rule_order(metric_names, row[1])):
        if metric_names.rules is None or rule in metric_names.rules:
            flagged_by[tutor_id].append(rule)
    return [_record(tutors[tutor_id], values[tutor_id], flagged_by[tutor_id], metric_names)
            for tutor_id in ids if tutor_id in tutors]


def _record(tutor: tuple, metrics: dict[str, float | None], flagged_by: list[str],
            metric_names: MetricNames) -> dict[str, Any]:
    tutor_id, name, flagged, risk_score, scored_at = tutor
    record: dict[str, Any] = {"tutor_id": tutor_id, "name": name}
    for metric in metric_names:
        value = metrics.get(metric)
        record[metric] = int(value) if value is not None and metric in metric_names.counts else value
    record["flagged"] = bool(flagged)
    record["flagged_by"] = flagged_by
    record["risk_score"] = risk_score
    record["updated_at"] = _iso(Tutor.scored_at.python_value(scored_at))
    return record


def _reschedules(tutor_id: str) -> peewee.ModelSelect:
    return (
        Reschedule.select(Reschedule, Session.scheduled_time)
        .join(Session, on=(Reschedule.session == Session.session_id))
        .where(Reschedule.tutor == tutor_id)
        .order_by(Session.scheduled_time.desc())
        .objects()
    )


def _reschedule(row: Reschedule) -> dict[str, Any]:
    return {
        "at": _iso(row.scheduled_time),
        "session_id": row.session_id,
        "initiator": row.initiator,
        "reason": row.reason,
        "original_time": _iso(row.original_time),
        "new_time": _iso(row.new_time),
        "requested_at": _iso(row.requested_at),
        "notice_hours": None if row.notice_seconds is None else round(row.notice_seconds / 3600, 1),
        "delay_hours": None if row.delay_seconds is None else round(row.delay_seconds / 3600, 1),
    }


def _risk_event(event: RiskEvent) -> dict[str, Any]:
    return {
        "type": "risk",
        "at": _iso(event.occurred_at),
        "date": event.day.isoformat(),
        "rule": event.rule,
        "kind": event.kind,
        "severity": event.severity,
        "explanation": event.explanation,
    }


def get_session(session_id: str) -> dict[str, Any] | None:
    """One stored session as an admin reads it, with its reschedule (``None`` when it has none)."""
    if not storable(session_id):
        return None
    session = Session.get_or_none(Session.session_id == session_id)
    if session is None:
        return None
    reschedule = Reschedule.get_or_none(Reschedule.session == session_id)
    if reschedule is not None:
        reschedule.scheduled_time = session.scheduled_time
    return {
        "session_id": session.session_id, "tutor_id": session.tutor_id, "student_id": session.student_id,
        "student_name": session.student_name, "scheduled_time": _iso(session.scheduled_time),
        "completed_time": _iso(session.completed_time), "status": session.status, "subject": session.subject,
        "duration_minutes": session.duration_minutes, "is_first_session": session.is_first_session,
        "reschedule": _reschedule(reschedule) if reschedule is not None else None,
    }


def latest_session_id(tutor_id: str) -> str | None:
    """The tutor's most recently scheduled session."""
    row = (Session.select(Session.session_id).where(Session.tutor == tutor_id)
           .order_by(Session.scheduled_time.desc(), Session.session_id.desc()).first())
    return row.session_id if row else None


def _session_summary(tutor_id: str) -> dict[str, Any]:
    """Totals from the daily counts (a row a day, not a row a session) and the first and last session
    from the ends of the (tutor, scheduled_time) index, so reading a tutor costs little as history grows."""
    day = TutorDailyCount
    total, completed, rescheduled, no_shows = (
        day.select(peewee.fn.SUM(day.sessions), peewee.fn.SUM(day.completed), peewee.fn.SUM(day.rescheduled),
                   peewee.fn.SUM(day.no_shows)).where(day.tutor == tutor_id).tuples().first() or (0, 0, 0, 0))
    moments = Session.select(Session.scheduled_time).where(Session.tutor == tutor_id)
    first = moments.order_by(Session.scheduled_time.asc()).limit(1).scalar()
    last = moments.order_by(Session.scheduled_time.desc()).limit(1).scalar()
    as_utc = Session.scheduled_time.python_value
    return {
        "total": int(total or 0),
        "completed": int(completed or 0),
        "rescheduled": int(rescheduled or 0),
        "no_show": int(no_shows or 0),
        "first_session_at": _iso(as_utc(first)),
        "last_session_at": _iso(as_utc(last)),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def flagged_tutor_ids() -> set[str]:
    return {row.tutor_id for row in Tutor.select(Tutor.tutor_id).where(Tutor.flagged)}


def flagged_tutor_ids_by_rule() -> dict[str, set[str]]:
    """Per rule, the tutors it flags now."""
    found: dict[str, set[str]] = {}
    for rule, tutor_id in TutorScore.select(TutorScore.rule, TutorScore.tutor).where(TutorScore.flagged).tuples():
        found.setdefault(rule, set()).add(tutor_id)
    return found


def list_risk_events(kind: str | None = None, tutor_id: str | None = None) -> list[dict[str, Any]]:
    """Risk events in event-time order, of every tutor or of one (``kind``: raised or cleared)."""
    query = RiskEvent.select().order_by(RiskEvent.day, RiskEvent.id)
    if kind:
        query = query.where(RiskEvent.kind == kind)
    if tutor_id is not None:
        query = query.where(RiskEvent.tutor == tutor_id)
    return [{"tutor_id": e.tutor_id, **_risk_event(e)} for e in query]


def last_session_day() -> dt.date | None:
    """The latest UTC day any session is scheduled on."""
    return TutorDailyCount.select(peewee.fn.MAX(TutorDailyCount.day)).scalar()


def latest_scoring() -> dt.datetime | None:
    """When any tutor was last scored: an ``--as-of`` before it would rewrite history computed since."""
    latest = (Tutor.select(Tutor.scored_at).where(Tutor.scored_at.is_null(False))
              .order_by(Tutor.scored_at.desc()).first())
    return latest.scored_at if latest else None


@dataclass(frozen=True)
class Backlog:
    """Work accepted but not finished: sessions not yet stored (the inbox, and those that failed for good),
    and tutors whose sessions are stored but not yet rescored (with how many of those are failing)."""

    pending: int
    failed: int
    oldest_pending_age_seconds: float | None
    tutors_waiting: int = 0
    oldest_waiting_seconds: float | None = None
    tutors_failing: int = 0
    emails_unsent: int = 0
    oldest_unsent_email_seconds: float | None = None
    emails_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"pending": self.pending, "failed": self.failed,
                "oldest_pending_age_seconds": self.oldest_pending_age_seconds,
                "rescore": {"tutors_waiting": self.tutors_waiting,
                            "oldest_waiting_seconds": self.oldest_waiting_seconds,
                            "tutors_failing": self.tutors_failing},
                "emails": {"unsent": self.emails_unsent, "oldest_unsent_seconds": self.oldest_unsent_email_seconds,
                           "failed": self.emails_failed}}


def backlog(now: dt.datetime) -> Backlog:
    counts = dict(
        InboxItem.select(InboxItem.status, peewee.fn.COUNT(InboxItem.id))
        .where(InboxItem.status.in_(["pending", "failed"]))
        .group_by(InboxItem.status)
        .tuples()
    )
    oldest = (InboxItem.select(InboxItem.received_at).where(InboxItem.status == "pending")
              .order_by(InboxItem.received_at).first())
    waiting, failing, since = (
        RescoreWaiting.select(peewee.fn.COUNT(RescoreWaiting.tutor),
                              peewee.fn.SUM(peewee.Case(None, [(RescoreWaiting.attempts > 0, 1)], 0)),
                              peewee.fn.MIN(RescoreWaiting.waiting_since))
        .tuples().get()
    )
    since = RescoreWaiting.waiting_since.python_value(since)
    emails = dict(EmailReport.select(EmailReport.status, peewee.fn.COUNT(EmailReport.id))
                  .where(EmailReport.status.in_(["pending", "failed"])).group_by(EmailReport.status).tuples())
    unsent_since = (EmailReport.select(EmailReport.created_at).where(EmailReport.status == "pending")
                    .order_by(EmailReport.created_at).first())
    return Backlog(counts.get("pending", 0), counts.get("failed", 0), _age_seconds(now, oldest and oldest.received_at),
                   waiting or 0, _age_seconds(now, since), int(failing or 0), emails.get("pending", 0),
                   _age_seconds(now, unsent_since and unsent_since.created_at), emails.get("failed", 0))


def _age_seconds(now: dt.datetime, since: dt.datetime | None) -> float | None:
    return None if since is None else round(max((now - since).total_seconds(), 0.0), 1)


def flagged_count(on: dt.date | None = None) -> int:
    """Tutors flagged now, or (``on``) at the end of that day: any rule whose last event by then was a raise."""
    if on is None:
        return Tutor.select().where(Tutor.flagged).count()
    latest = (
        RiskEvent.select(
            RiskEvent.tutor, RiskEvent.kind,
            peewee.fn.ROW_NUMBER().over(partition_by=[RiskEvent.tutor, RiskEvent.rule],
                                        order_by=[RiskEvent.day.desc(), RiskEvent.id.desc()]).alias("position"),
        )
        .where(RiskEvent.day <= on)
        .alias("latest")
    )
    query = (
        RiskEvent.select(peewee.fn.COUNT(latest.c.tutor_id.distinct()))
        .from_(latest)
        .where((latest.c.position == 1) & (latest.c.kind == "raised"))
    )
    return query.scalar() or 0


def metric_totals(names: Iterable[str]) -> dict[str, float]:
    """The sum of each named metric over every tutor (0 when no tutor has it): counts add up to pooled rates."""
    names = list(names)
    totals = dict.fromkeys(names, 0.0)
    rows = (TutorMetric.select(TutorMetric.name, peewee.fn.SUM(TutorMetric.value))
            .where(TutorMetric.name.in_(names)).group_by(TutorMetric.name).tuples())
    totals.update({name: float(total or 0) for name, total in rows})
    return totals


def sessions_stored_since(moment: dt.datetime) -> int:
    """Sessions new or changed (and so scored) since ``moment``."""
    return Session.select().where(Session.updated_at >= moment).count()


def sessions_per_week(tutor_id: str, today: dt.date, weeks: int = 12) -> list[dict[str, Any]]:
    """Sessions by status in each of the last ``weeks`` seven-day spans ending ``today``, oldest first."""
    first = today - dt.timedelta(days=7 * weeks - 1)
    spans = [{"week_start": (first + dt.timedelta(days=7 * i)).isoformat(),
              "week_end": (first + dt.timedelta(days=7 * i + 6)).isoformat(),
              "sessions": 0, "completed": 0, "rescheduled": 0, "no_shows": 0} for i in range(weeks)]
    if not storable(tutor_id):
        return spans
    days = TutorDailyCount.select().where(
        (TutorDailyCount.tutor == tutor_id) & (TutorDailyCount.day >= first) & (TutorDailyCount.day <= today))
    for day in days:
        span = spans[(day.day - first) // (7 * ONE_DAY)]
        for name in ("sessions", "completed", "rescheduled", "no_shows"):
            span[name] += getattr(day, name)
    return spans
