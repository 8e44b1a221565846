import datetime as dt

from engine.windows import (
    Counts,
    DailyCounts,
    SessionFact,
    day_of,
    end_of_day,
    history_in_memory,
    session_counts,
    snapshot_moment,
)

UTC = dt.UTC
T = dt.datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


def fact(moment: dt.datetime, status: str = "completed", initiator: str | None = None) -> SessionFact:
    return SessionFact(moment, session_counts(status, initiator, False))


def test_window_holds_sessions_after_start_up_to_and_including_as_of():
    history = history_in_memory("t", [
        fact(T - dt.timedelta(days=7)),  # exactly N days before: outside
        fact(T - dt.timedelta(days=7) + dt.timedelta(microseconds=1)),  # just inside
        fact(T),  # exactly at as-of: inside
        fact(T + dt.timedelta(microseconds=1)),  # after as-of: outside
    ])
    assert history.window(7, T).sessions == 2


def test_window_counts_whole_days_between_the_edges():
    sessions = [fact(T - dt.timedelta(days=d, hours=h)) for d in range(0, 40) for h in (1, 13)]
    history = history_in_memory("t", sessions)
    for days in (7, 30, 90):
        start = T - dt.timedelta(days=days)
        expected = sum(1 for f in sessions if start < f.scheduled_time <= T)
        assert history.window(days, T).sessions == expected


def test_end_of_day_window_is_exactly_n_whole_days():
    day = dt.date(2026, 11, 20)
    sessions = [fact(dt.datetime.combine(day - dt.timedelta(days=d), dt.time(0, 0), tzinfo=UTC)) for d in range(10)]
    history = history_in_memory("t", sessions)
    # days 14..20 inclusive: 7 sessions at midnight, the one on the 13th is outside
    assert history.window(7, end_of_day(day)).sessions == 7


def test_tutor_and_student_reschedules_are_counted_apart():
    counts = session_counts("rescheduled", "tutor", False) + session_counts("rescheduled", "student", True)
    assert counts == Counts(sessions=2, rescheduled=2, tutor_reschedules=1, student_reschedules=1, first_sessions=1)


def test_day_of_uses_utc():
    evening_in_new_york = dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert day_of(evening_in_new_york) == dt.date(2026, 11, 25)


def test_snapshot_of_today_is_as_of_now_and_of_past_days_as_of_their_end():
    assert snapshot_moment(T.date(), T) == T
    assert snapshot_moment(dt.date(2026, 11, 24), T) == end_of_day(dt.date(2026, 11, 24))


def test_daily_counts_outside_loaded_span_are_empty():
    daily = DailyCounts({dt.date(2026, 1, 2): Counts(sessions=3)}, dt.date(2026, 1, 1), dt.date(2026, 1, 3))
    assert daily.between(dt.date(2025, 12, 1), dt.date(2026, 2, 1)).sessions == 3
    assert daily.between(dt.date(2026, 1, 3), dt.date(2026, 1, 1)).sessions == 0
