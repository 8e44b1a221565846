"""The one read layer: tutors listed, one tutor in detail, one tutor's history.

The CLI, the API and the dashboard all read through here; no SQL lives anywhere else.
A tutor record is the tutor's id, name, flag, risk score and update time plus every
metric the engine measures (``sessions_7d`` ...) and every metric of every loaded rule,
so a new rule's metrics show up everywhere without touching readers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
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
    Session,
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorScore,
    database_proxy,
)
from engine.rulekit import MetricNames
from engine.sql import Sql, from_db_day, from_db_json, from_db_time, to_db_day
from engine.validation import storable
from engine.windows import ONE_DAY, days_between

DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_OFFSET = 2**31 - 1  # beyond this the database's integers overflow
DEFAULT_HISTORY_DAYS = 90
MAX_HISTORY_DAYS = 3650
MAX_SEARCH = 200
RECENT_RESCHEDULES = 10
# A sort's descending order, column by column (True: that column descending); its ascending order is
# exactly this reversed. Each is an index of tutors (engine.models.TUTOR_INDEXES).
TUTOR_ORDERS = {
    "risk_score": ((Tutor.risk_score, True), (Tutor.tutor_id, False)),
    "flagged": ((Tutor.flagged, True), (Tutor.risk_score, True), (Tutor.tutor_id, False)),
    "tutor_id": ((Tutor.tutor_id, True),),
}
# Columns a tutor may have no value in: those with one in (column, id) order, then the rest by id.
NULLABLE_COLUMNS = {"name": Tutor.name, "updated_at": Tutor.scored_at}
BASE_SORTS = (*TUTOR_ORDERS, *NULLABLE_COLUMNS)


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
    """Tutors with their scores, filtered, searched, sorted (``-`` for descending) and paged.

    Every order ends in the tutor id, so each page of one query is stable, and a descending order is the
    ascending one reversed, so one index serves both (see ``TUTOR_ORDERS``). On a column that may be empty
    (name, update time, any metric) the tutors with a value come first in its order, then those without,
    by id, either way.
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
    tutors = _where(Tutor.select(Tutor.tutor_id), condition)
    total = tutors.count()
    if field in TUTOR_ORDERS:
        ordered = tutors.order_by(*_ordering(TUTOR_ORDERS[field], descending))
        ids = [row[0] for row in ordered.limit(limit).offset(offset).tuples()]
    elif field in NULLABLE_COLUMNS:
        column = NULLABLE_COLUMNS[field]
        ids = _valued_then_unvalued(tutors.where(column.is_null(False)), (column, Tutor.tutor_id), descending,
                                    lambda: tutors.where(column.is_null()).order_by(Tutor.tutor_id), limit, offset)
    else:
        ids = _page_by_metric(field, descending, condition, tutors, total, limit, offset)
    return TutorPage(_records(ids, metric_names), total)


def _ordering(columns: Sequence[tuple[peewee.Field, bool]], descending: bool) -> list[peewee.Ordering]:
    return [column.desc() if column_descending == descending else column.asc()
            for column, column_descending in columns]


def _tutor_filter(flagged: bool | None, search: str | None) -> peewee.Expression | None:
    """The tutors asked for, or None for all of them."""
    condition = None
    if flagged is not None:
        condition = Tutor.flagged == flagged
    if search:
        found = Tutor.tutor_id.contains(search) | Tutor.name.contains(search)
        condition = found if condition is None else condition & found
    return condition


def _where(query: peewee.ModelSelect, condition: peewee.Expression | None) -> peewee.ModelSelect:
    return query if condition is None else query.where(condition)


def _valued_then_unvalued(valued: peewee.ModelSelect, order: Sequence[peewee.Node], descending: bool,
                          unvalued: Callable[[], peewee.ModelSelect], limit: int, offset: int) -> list[str]:
    """A page of the tutors with a value, in ``order`` (reversed when descending), then of those without,
    by id (``unvalued`` gives them in that order): each part read along an index, so a page costs about its
    own rows and its offset."""
    direction = _ordering([(column, True) for column in order], descending)
    ids = [row[0] for row in valued.order_by(*direction).limit(limit).offset(offset).tuples()]
    if len(ids) == limit:
        return ids
    skipped = 0 if ids else max(0, offset - valued.count())
    return ids + [row[0] for row in unvalued().limit(limit - len(ids)).offset(skipped).tuples()]


def _page_by_metric(name: str, descending: bool, condition: peewee.Expression | None,
                    tutors: peewee.ModelSelect, total: int, limit: int, offset: int) -> list[str]:
    """Tutors by one metric: the (name, value, tutor) index alone when every tutor is asked for (each
    value row belongs to a tutor), joined to the tutors when filtered."""
    metric = TutorMetric
    rows = metric.select(metric.tutor).where(metric.name == name)
    if condition is not None:
        rows = rows.join(Tutor, on=(Tutor.tutor_id == metric.tutor)).where(condition)

    def unvalued() -> peewee.ModelSelect:
        if rows.count() == total:  # every tutor asked for has a row: those without a value hold a null, in
            return rows.where(metric.value.is_null()).order_by(metric.tutor)  # the index's order
        # some have no row yet (not yet scored by the metric's rule). NOT IN, not NOT EXISTS: one read of the
        # metric's index into a hash, where Postgres would otherwise probe it once per tutor
        with_value = metric.select(metric.tutor).where((metric.name == name) & metric.value.is_null(False))
        return tutors.where(Tutor.tutor_id.not_in(with_value)).order_by(Tutor.tutor_id)

    valued = rows.where(metric.value.is_null(False))
    return _valued_then_unvalued(valued, (metric.value, metric.tutor), descending, unvalued, limit, offset)


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
    record["recent_reschedules"] = [_reschedule(r) for r in _recent_reschedules(tutor_id)]
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
    their flag follows from the risk events. Only the window's rows are read, plus each rule's last
    event before it, so the cost is the window's, not the tutor's whole history.
    """
    if not 1 <= days <= MAX_HISTORY_DAYS:
        raise QueryError("days", f"Must be between 1 and {MAX_HISTORY_DAYS}")
    if not storable(tutor_id) or not Tutor.select().where(Tutor.tutor_id == tutor_id).exists():
        return None
    first = today - dt.timedelta(days=days - 1)
    sql = Sql(database_proxy.obj)  # raw rows: a point a day, each with every metric
    snapshots = {from_db_day(day): (metrics, flags, flagged) for day, metrics, flags, flagged in sql.all(
        "SELECT day, metrics, flags, flagged FROM score_snapshots WHERE tutor_id = {p} AND day >= {p} AND day <= {p}",
        (tutor_id, to_db_day(first), to_db_day(today)))}
    risk_events = list(RiskEvent.select().where((RiskEvent.tutor == tutor_id) & (RiskEvent.day >= first))
                       .order_by(RiskEvent.day, RiskEvent.id))
    raised = _raised_before(sql, tutor_id, first)
    points = []
    template = dict.fromkeys(metric_names)
    upcoming = iter(risk_events)
    event = next(upcoming, None)
    for day in days_between(first, today):
        while event is not None and event.day <= day:
            raised[event.rule] = event.kind == "raised"
            event = next(upcoming, None)
        point: dict[str, Any] = {"date": day.isoformat(), **template}
        if day in snapshots:
            metrics, flags, flagged = snapshots[day]
            point.update(from_db_json(metrics))
            point["flagged"], point["flags"] = bool(flagged), from_db_json(flags)
        else:
            point["flagged"], point["flags"] = any(raised.values()), {}
        points.append(point)
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    events = [{"type": "reschedule", **_reschedule(r)} for r in _reschedules_since(tutor_id, since)]
    events += [_risk_event(e) for e in risk_events]
    events.sort(key=lambda e: e["at"])
    return {"tutor_id": tutor_id, "days": days, "points": points, "events": events}


def _raised_before(sql: Sql, tutor_id: str, day: dt.date) -> dict[str, bool]:
    """Per rule, whether its last risk event before ``day`` was a raise: the flag a window starts with.

    The rules are found by skipping along the (tutor, rule, day, id) index, a step per rule, and each
    rule's last event is that index read backwards, so this costs a few steps however long the history.
    """
    rows = sql.all(
        "WITH RECURSIVE rules(rule) AS ("
        " SELECT MIN(rule) FROM risk_events WHERE tutor_id = {p} AND day < {p}"
        " UNION ALL SELECT (SELECT MIN(e.rule) FROM risk_events e WHERE e.tutor_id = {p} AND e.day < {p}"
        " AND e.rule > rules.rule) FROM rules WHERE rules.rule IS NOT NULL) "
        "SELECT rules.rule, (SELECT e.kind FROM risk_events e WHERE e.tutor_id = {p} AND e.rule = rules.rule "
        "AND e.day < {p} ORDER BY e.day DESC, e.id DESC LIMIT 1) FROM rules WHERE rules.rule IS NOT NULL",
        (tutor_id, to_db_day(day)) * 3,
    )
    return {rule: kind == "raised" for rule, kind in rows}


def _records(ids: Sequence[str], metric_names: MetricNames) -> list[dict[str, Any]]:
    """The records of these tutors, in this order: two raw statements, each tutor's metric values from one
    row (``tutor_metric_sets``), and plain loops (Peewee's per-value work was most of a page's time)."""
    if not ids:
        return []
    sql = Sql(database_proxy.obj)
    marks = sql.marks(len(ids))
    tutors = {row[0]: row[1:] for row in sql.all(
        "SELECT t.tutor_id, t.name, t.flagged, t.risk_score, t.scored_at, m.metrics FROM tutors t "
        f"LEFT JOIN tutor_metric_sets m ON m.tutor_id = t.tutor_id WHERE t.tutor_id IN ({marks})", ids)}
    flagged_by: dict[str, list[str]] = {tutor_id: [] for tutor_id in tutors}
    shown = metric_names.rules
    for tutor_id, rule in sql.all(f"SELECT tutor_id, rule FROM tutor_scores WHERE tutor_id IN ({marks}) "
                                  "AND flagged", ids):
        if tutor_id in flagged_by and (shown is None or rule in shown):
            flagged_by[tutor_id].append(rule)
    template = dict.fromkeys(metric_names)
    counts = [name for name in metric_names if name in metric_names.counts]
    records = []
    for tutor_id in ids:
        if tutor_id not in tutors:
            continue
        name, flagged, risk_score, scored_at, metrics = tutors[tutor_id]
        record: dict[str, Any] = {"tutor_id": tutor_id, "name": name, **template}
        for values in from_db_json(metrics or "{}").values():  # by the rule that owns them
            record.update({metric: value for metric, value in values.items() if metric in template})
        for metric in counts:  # stored as numbers of either kind, shown as whole numbers
            if record[metric] is not None:
                record[metric] = int(record[metric])
        record["flagged"] = bool(flagged)
        record["flagged_by"] = sorted(flagged_by[tutor_id], key=lambda rule: _rule_order(metric_names, rule))
        record["risk_score"] = risk_score
        record["updated_at"] = _iso(from_db_time(scored_at))
        records.append(record)
    return records


def _recent_reschedules(tutor_id: str) -> peewee.ModelSelect:
    """The latest reschedules by the time each moved session was booked for: the first rows of the
    (tutor, original_time) index, however many the tutor has."""
    return (
        Reschedule.select(Reschedule, Session.scheduled_time)
        .join(Session, on=(Reschedule.session == Session.session_id))
        .where(Reschedule.tutor == tutor_id)
        .order_by(Reschedule.original_time.desc(), Reschedule.session.desc())
        .limit(RECENT_RESCHEDULES)
        .objects()
    )


def _reschedules_since(tutor_id: str, since: dt.datetime) -> peewee.ModelSelect:
    """The reschedules of the tutor's sessions held since ``since``: a range of the (tutor, scheduled_time)
    index, so a window of history costs its own sessions only."""
    return (
        Reschedule.select(Reschedule, Session.scheduled_time)
        .join(Session, on=(Reschedule.session == Session.session_id))
        .where((Session.tutor == tutor_id) & (Session.scheduled_time >= since))
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
    """Totals from the tutor's row (kept as its sessions move) and the first and last session from the ends of the
    (tutor, scheduled_time) index, so reading a tutor costs the same as its history grows."""
    total = Tutor.select(Tutor.total_sessions, Tutor.total_completed, Tutor.total_rescheduled,
                         Tutor.total_no_shows).where(Tutor.tutor_id == tutor_id).tuples().first() or (0, 0, 0, 0)
    moments = Session.select(Session.scheduled_time).where(Session.tutor == tutor_id)
    first = moments.order_by(Session.scheduled_time.asc()).limit(1).scalar()
    last = moments.order_by(Session.scheduled_time.desc()).limit(1).scalar()
    as_utc = Session.scheduled_time.python_value
    return {
        "total": total[0],
        "completed": total[1],
        "rescheduled": total[2],
        "no_show": total[3],
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
