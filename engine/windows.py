"""The one place that knows window arithmetic.

A window of N days as of time T holds the sessions whose ``scheduled_time`` lies in
(T - N days, T]. Whole UTC days come from per-day counts (prefix sums, so any window
is O(1)); only the two partial edge days of a mid-day T are counted from sessions.
The daily snapshot of day D is taken as of the last microsecond of D, so its windows
are exactly the N whole days ending with D.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from engine.config import WINDOW_DAYS
from engine.evidence import EVIDENCE_WINDOWS

UTC = dt.UTC
ONE_DAY = dt.timedelta(days=1)
LAST_MICROSECOND = dt.time(23, 59, 59, 999_999)


class Counts(NamedTuple):
    """Session counts over some span; every status counts towards ``sessions``.

    ``first_session_*`` count the first sessions of a tutor with a new student that went that way.
    """

    sessions: int = 0
    completed: int = 0
    no_shows: int = 0
    rescheduled: int = 0
    tutor_reschedules: int = 0
    student_reschedules: int = 0
    first_sessions: int = 0
    first_session_no_shows: int = 0
    first_session_tutor_reschedules: int = 0

    def __add__(self, other: tuple) -> Counts:  # type: ignore[override]
        return Counts._make(map(operator.add, self, other))

    def __sub__(self, other: tuple) -> Counts:
        return Counts._make(map(operator.sub, self, other))

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


COUNT_FIELDS = Counts._fields
# The all-time totals kept on each tutor's row (column: the count it sums).
TOTALS = {"total_sessions": "sessions", "total_completed": "completed", "total_rescheduled": "rescheduled",
          "total_no_shows": "no_shows"}


def session_counts(status: str, initiator: str | None, is_first_session: bool | None) -> Counts:
    """What one session adds to its day's counts."""
    first = bool(is_first_session)
    return Counts(
        sessions=1,
        completed=int(status == "completed"),
        no_shows=int(status == "no_show"),
        rescheduled=int(status == "rescheduled"),
        tutor_reschedules=int(status == "rescheduled" and initiator == "tutor"),
        student_reschedules=int(status == "rescheduled" and initiator == "student"),
        first_sessions=int(first),
        first_session_no_shows=int(first and status == "no_show"),
        first_session_tutor_reschedules=int(first and status == "rescheduled" and initiator == "tutor"),
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
        active = [day for day, counts in by_day.items() if counts.sessions and first <= day <= last]
        self.last_active: dt.date | None = max(active, default=None)
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


SessionsLoader = Callable[[list[dt.date]], Mapping[dt.date, Iterable[SessionFact]]]
ReschedulesLoader = Callable[[dt.datetime, dt.datetime], Iterable[RescheduleFact]]
MAX_WINDOW_DAYS = max(WINDOW_DAYS)
PREFETCHED_WINDOWS = tuple(sorted(set(WINDOW_DAYS) | set(EVIDENCE_WINDOWS)))  # the windows the rate rules ask for


class TutorHistory:
    """A tutor's session history as rules see it: window counts and reschedules as of any moment.

    ``daily`` must cover every day a window can reach (up to 90 days before the earliest
    moment asked about); partial edge days are fetched through ``load_sessions``, for the
    common windows of one moment in a single call.
    """

    def __init__(
        self,
        tutor_id: str,
        name: str | None,
        daily: DailyCounts,
        load_sessions: SessionsLoader,
        load_reschedules: ReschedulesLoader,
    ):
        self.tutor_id, self.name, self.daily = tutor_id, name, daily
        self._load_sessions = load_sessions
        self._load_reschedules = load_reschedules
        self._day_sessions: dict[dt.date, tuple[SessionFact, ...]] = {}
        self._windows_as_of: dt.datetime | None = None
        self._windows: dict[int, Counts] = {}  # every rule asks for the same windows of the same moment

    def window(self, days: int, as_of: dt.datetime) -> Counts:
        """Counts of the sessions scheduled in (as_of - days, as_of]."""
        if as_of != self._windows_as_of:
            self._windows_as_of, self._windows = as_of, {}
        counts = self._windows.get(days)
        if counts is None:
            counts = self._windows[days] = self._count(days, as_of)
        return counts

    def _count(self, days: int, as_of: dt.datetime) -> Counts:
        if not 1 <= days <= MAX_WINDOW_DAYS:
            raise ValueError(f"windows span 1 to {MAX_WINDOW_DAYS} days, not {days}")
        end_day = day_of(as_of)
        if as_of.time() == LAST_MICROSECOND:  # a daily snapshot: exactly the N whole days ending today
            return self.daily.between(end_day - dt.timedelta(days=days - 1), end_day)
        start = as_of - dt.timedelta(days=days)
        start_day = day_of(start)
        total = self.daily.between(start_day + ONE_DAY, end_day - ONE_DAY)
        for fact in self._sessions_on(end_day, as_of):
            if fact.scheduled_time <= as_of:
                total += fact.counts
        for fact in self._sessions_on(start_day, as_of):
            if fact.scheduled_time > start:
                total += fact.counts
        return total

    def reschedules(self, days: int, as_of: dt.datetime) -> list[RescheduleFact]:
        """Reschedules of sessions scheduled in (as_of - days, as_of], oldest first."""
        return sorted(self._load_reschedules(as_of - dt.timedelta(days=days), as_of), key=lambda r: r.scheduled_time)

    def _sessions_on(self, day: dt.date, as_of: dt.datetime) -> tuple[SessionFact, ...]:
        if day not in self._day_sessions:
            wanted = {day, day_of(as_of)} | {day_of(as_of - dt.timedelta(days=n)) for n in PREFETCHED_WINDOWS}
            wanted -= set(self._day_sessions)
            loaded = self._load_sessions(sorted(wanted))
            for each in wanted:
                self._day_sessions[each] = tuple(loaded.get(each, ()))
        return self._day_sessions[day]


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
        load_sessions=lambda days: {day: [f for f in sessions if day_of(f.scheduled_time) == day] for day in days},
        load_reschedules=lambda after, until: [r for r in reschedules if after < r.scheduled_time <= until],
    )
