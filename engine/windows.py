"""The one place that knows window arithmetic.

A window of N days as of time T holds the sessions whose ``scheduled_time`` lies in
(T - N days, T]. Whole UTC days come from per-day counts (prefix sums, so any window
is O(1)); only the two partial edge days of a mid-day T are counted from sessions.
The daily snapshot of day D is taken as of the last microsecond of D, so its windows
are exactly the N whole days ending with D.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

UTC = dt.UTC
ONE_DAY = dt.timedelta(days=1)
LAST_MICROSECOND = dt.time(23, 59, 59, 999_999)


class Counts(NamedTuple):
    """Session counts over some span; every status counts towards ``sessions``."""

    sessions: int = 0
    completed: int = 0
    no_shows: int = 0
    rescheduled: int = 0
    tutor_reschedules: int = 0
    student_reschedules: int = 0
    first_sessions: int = 0

    def __add__(self, other: tuple) -> Counts:  # type: ignore[override]
        return Counts._make(map(operator.add, self, other))

    def __sub__(self, other: tuple) -> Counts:
        return Counts._make(map(operator.sub, self, other))

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


COUNT_FIELDS = Counts._fields


def session_counts(status: str, initiator: str | None, is_first_session: bool | None) -> Counts:
    """What one session adds to its day's counts."""
    return Counts(
        sessions=1,
        completed=int(status == "completed"),
        no_shows=int(status == "no_show"),
        rescheduled=int(status == "rescheduled"),
        tutor_reschedules=int(status == "rescheduled" and initiator == "tutor"),
        student_reschedules=int(status == "rescheduled" and initiator == "student"),
        first_sessions=int(bool(is_first_session)),
    )


def day_of(moment: dt.datetime) -> dt.date:
    """The UTC day a moment falls on."""
    return moment.astimezone(UTC).date()


def end_of_day(day: dt.date) -> dt.datetime:
    """The last microsecond of a UTC day: the moment a daily snapshot is taken."""
    return dt.datetime.combine(day, LAST_MICROSECOND, tzinfo=UTC)


def start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UTC)


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def snapshot_moment(day: dt.date, now: dt.datetime) -> dt.datetime:
    """A day's snapshot is as of its end, or as of ``now`` while the day is still running."""
    return min(end_of_day(day), now)


class DailyCounts:
    """Prefix sums over per-day counts, so the sum over any span of days is O(1)."""

    def __init__(self, by_day: Mapping[dt.date, Counts], first: dt.date, last: dt.date):
        self.first, self.last = first, last
        running = Counts()
        self._prefix: list[Counts] = [running]
        for day in days_between(first, last):
            running = running + by_day.get(day, Counts())
            self._prefix.append(running)

    def between(self, first: dt.date, last: dt.date) -> Counts:
        """Counts of the days ``first``..``last`` inclusive; days outside the loaded span must be empty."""
        lo = max((first - self.first).days, 0)
        hi = min((last - self.first).days + 1, len(self._prefix) - 1)
        if hi <= lo:
            return Counts()
        return self._prefix[hi] - self._prefix[lo]


@dataclass(frozen=True)
class SessionFact:
    """Just enough of a session to count it inside a partial day."""

    scheduled_time: dt.datetime
    counts: Counts


@dataclass(frozen=True)
class RescheduleFact:
    """A reschedule as a rule sees it; notice and delay are in seconds, ``None`` when unknown."""

    session_id: str
    scheduled_time: dt.datetime
    initiator: str
    reason: str | None
    original_time: dt.datetime
    new_time: dt.datetime | None
    requested_at: dt.datetime | None
    notice_seconds: int | None
    delay_seconds: int | None


DaySessionsLoader = Callable[[dt.date], Iterable[SessionFact]]
ReschedulesLoader = Callable[[dt.datetime, dt.datetime], Iterable[RescheduleFact]]


class TutorHistory:
    """A tutor's session history as rules see it: window counts and reschedules as of any moment."""

    def __init__(
        self,
        tutor_id: str,
        name: str | None,
        daily: DailyCounts,
        load_day_sessions: DaySessionsLoader,
        load_reschedules: ReschedulesLoader,
    ):
        self.tutor_id, self.name, self.daily = tutor_id, name, daily
        self._load_day_sessions = functools.cache(lambda day: tuple(load_day_sessions(day)))
        self._load_reschedules = load_reschedules

    def window(self, days: int, as_of: dt.datetime) -> Counts:
        """Counts of the sessions scheduled in (as_of - days, as_of]."""
        start = as_of - dt.timedelta(days=days)
        start_day, end_day = day_of(start), day_of(as_of)
        total = self.daily.between(start_day + ONE_DAY, end_day - ONE_DAY)
        total += self._part_of_day(end_day, lambda t: t <= as_of, whole=as_of == end_of_day(end_day))
        total += self._part_of_day(start_day, lambda t: t > start, whole=False, empty=start == end_of_day(start_day))
        return total

    def reschedules(self, days: int, as_of: dt.datetime) -> list[RescheduleFact]:
        """Reschedules of sessions scheduled in (as_of - days, as_of], oldest first."""
        return sorted(self._load_reschedules(as_of - dt.timedelta(days=days), as_of), key=lambda r: r.scheduled_time)

    def _part_of_day(
        self, day: dt.date, keep: Callable[[dt.datetime], bool], whole: bool, empty: bool = False
    ) -> Counts:
        if empty:
            return Counts()
        if whole:
            return self.daily.between(day, day)
        total = Counts()
        for fact in self._load_day_sessions(day):
            if keep(fact.scheduled_time):
                total += fact.counts
        return total


def history_in_memory(
    tutor_id: str,
    sessions: Iterable[SessionFact],
    reschedules: Iterable[RescheduleFact] = (),
    name: str | None = None,
) -> TutorHistory:
    """A history over plain lists, for rule tests and plugin authors: no database needed."""
    sessions, reschedules = list(sessions), list(reschedules)
    by_day: dict[dt.date, Counts] = {}
    for fact in sessions:
        day = day_of(fact.scheduled_time)
        by_day[day] = by_day.get(day, Counts()) + fact.counts
    first = min(by_day, default=dt.date(2000, 1, 1))
    last = max(by_day, default=first)
    return TutorHistory(
        tutor_id,
        name,
        DailyCounts(by_day, first, last),
        load_day_sessions=lambda day: [f for f in sessions if day_of(f.scheduled_time) == day],
        load_reschedules=lambda after, until: [r for r in reschedules if after < r.scheduled_time <= until],
    )
