"""Load a tutor's history from the database, as rules see it (:class:`engine.windows.TutorHistory`).

Daily counts come in one read; the sessions of a window's partial edge days and the
reschedules a rule asks about are read only when asked for.
"""

from __future__ import annotations

import datetime as dt

import peewee

from engine.models import Reschedule, Session, Tutor, TutorDailyCount
from engine.personal import personal_data
from engine.sql import Sql, from_db_day, from_db_time, to_db_day, to_db_time
from engine.windows import (
    COUNT_FIELDS,
    MAX_WINDOW_DAYS,
    ONE_DAY,
    TOTALS,
    Counts,
    DailyCounts,
    RescheduleFact,
    SessionFact,
    TutorHistory,
    day_of,
    session_counts,
    start_of_day,
)


def load_history(database: peewee.Database, tutor_id: str, name: str | None, first_day: dt.date,
                 last_day: dt.date) -> TutorHistory:
    """Daily counts wide enough for every window of every day from ``first_day`` to ``last_day``."""
    sql = Sql(database)
    since = first_day - dt.timedelta(days=MAX_WINDOW_DAYS)
    rows = sql.all(
        f"SELECT day, {', '.join(COUNT_FIELDS)} FROM tutor_daily_counts "
        "WHERE tutor_id = {p} AND day >= {p} AND day <= {p}",
        (tutor_id, to_db_day(since), to_db_day(last_day)),
    )
    by_day = {from_db_day(row[0]): Counts._make(row[1:]) for row in rows}
    return TutorHistory(
        tutor_id, name, DailyCounts(by_day, since, last_day),
        load_sessions=lambda days: load_sessions_on(sql, tutor_id, days),
        load_reschedules=lambda after, until: load_reschedules(sql, tutor_id, after, until),
    )


def load_sessions_on(sql: Sql, tutor_id: str, days: list[dt.date]) -> dict[dt.date, list[SessionFact]]:
    """The tutor's sessions on the given UTC days, in one query."""
    ranges = " OR ".join(["(s.scheduled_time >= {p} AND s.scheduled_time < {p})"] * len(days))
    params: list = [tutor_id]
    for day in days:
        params += [to_db_time(start_of_day(day)), to_db_time(start_of_day(day + ONE_DAY))]
    rows = sql.all(
        "SELECT s.scheduled_time, s.status, s.is_first_session, r.initiator FROM sessions s "
        "LEFT JOIN reschedules r ON r.session_id = s.session_id "
        f"WHERE s.tutor_id = {{p}} AND ({ranges})",
        params,
    )
    found: dict[dt.date, list[SessionFact]] = {day: [] for day in days}
    for scheduled, status, first, initiator in rows:
        moment = from_db_time(scheduled)
        found[day_of(moment)].append(
            SessionFact(moment, session_counts(status, initiator, None if first is None else bool(first))))
    return found


def load_reschedules(sql: Sql, tutor_id: str, after: dt.datetime, until: dt.datetime) -> list[RescheduleFact]:
    """Reschedules of the tutor's sessions scheduled in (after, until]."""
    rows = sql.all(
        "SELECT r.session_id, s.scheduled_time, r.initiator, r.reason, r.original_time, r.new_time, "
        "r.requested_at, r.notice_seconds, r.delay_seconds FROM reschedules r "
        "JOIN sessions s ON s.session_id = r.session_id "
        "WHERE r.tutor_id = {p} AND s.scheduled_time > {p} AND s.scheduled_time <= {p}",
        (tutor_id, to_db_time(after), to_db_time(until)),
    )
    return [
        RescheduleFact(session_id=sid, scheduled_time=from_db_time(scheduled), initiator=initiator,
                       reason=personal_data.open(reason),
                       original_time=from_db_time(original), new_time=from_db_time(new),
                       requested_at=from_db_time(requested),
                       notice_seconds=notice, delay_seconds=delay)
        for sid, scheduled, initiator, reason, original, new, requested, notice, delay in rows
    ]


def first_session_day(tutor_id: str) -> dt.date | None:
    first = TutorDailyCount.select(peewee.fn.MIN(TutorDailyCount.day)).where(TutorDailyCount.tutor == tutor_id)
    return first.scalar()


def recount_all_days(tutor_id: str) -> None:
    """Count a tutor's days from its sessions alone, once its counts are cleared (``tqs rescore --rebuild``)."""
    query = (
        Session.select(Session.scheduled_time, Session.status, Session.is_first_session, Reschedule.initiator)
        .join(Reschedule, peewee.JOIN.LEFT_OUTER, on=(Reschedule.session == Session.session_id))
        .where(Session.tutor == tutor_id)
        .objects()
    )
    totals: dict[dt.date, Counts] = {}
    for row in query:
        day = day_of(row.scheduled_time)
        totals[day] = totals.get(day, Counts()) + session_counts(row.status, row.initiator, row.is_first_session)
    rows = [dict(tutor=tutor_id, day=day, **total.as_dict()) for day, total in sorted(totals.items())]
    if rows:
        TutorDailyCount.insert_many(rows).execute()
    everything = sum(totals.values(), Counts())
    Tutor.update({Tutor._meta.fields[column]: getattr(everything, field) for column, field in TOTALS.items()}).where(
        Tutor.tutor_id == tutor_id).execute()


def recount_totals(database: peewee.Database) -> None:
    """Every tutor's all-time totals summed afresh from its daily counts (a migration's backfill)."""
    sums = ", ".join(f"{column} = COALESCE((SELECT SUM(d.{field}) FROM tutor_daily_counts d "
                     "WHERE d.tutor_id = tutors.tutor_id), 0)" for column, field in TOTALS.items())
    database.execute_sql(f"UPDATE tutors SET {sums}")
