"""What if a rule's settings were different? Replay the stored daily counts under the current and the
proposed settings, side by side, changing nothing.

Both columns are replays, so they compare like with like; the flags stored now can differ from the
"current" replay where settings changed during the period (each day was scored under the settings of
its time), so the stored count is given beside them.

Every tutor's days are replayed as the engine scores them (each day's snapshot as of its end, the
rule seeing its own flag of the day before), from the first day of the period with no flag
carried in: a flag standing on that first day is counted as standing, not as raised. The
counts are read in one query, so a replay costs the rule's own arithmetic and little else.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import peewee

from engine.history import load_reschedules
from engine.registry import with_settings
from engine.ruleset import RuleSet
from engine.sql import Sql, from_db_day, to_db_day
from engine.windows import COUNT_FIELDS, MAX_WINDOW_DAYS, Counts, DailyCounts, TutorHistory, end_of_day

BASELINE_SECONDS = 60.0  # how long a what-if reuses the counts it read and the current settings' replay
FLAP_SPAN_DAYS = 30
FLAP_RAISES = 3  # raised (and so cleared between) more than twice in 30 days


@dataclass
class Outcome:
    """One set of settings replayed: each tutor's flag per day, and the days its flag was raised or cleared."""

    label: str
    settings: dict
    flags: dict[str, list[bool]] = field(default_factory=dict)
    raises: dict[str, list[dt.date]] = field(default_factory=dict)
    clears: dict[str, list[dt.date]] = field(default_factory=dict)

    @property
    def flagged_now(self) -> set[str]:
        return {tutor for tutor, days in self.flags.items() if days and days[-1]}

    @property
    def raised(self) -> int:
        return sum(map(len, self.raises.values()))

    @property
    def cleared(self) -> int:
        return sum(map(len, self.clears.values()))

    @property
    def flapping(self) -> set[str]:
        """Tutors raised at least three times within some 30 days."""
        return {tutor for tutor, days in self.raises.items()
                if any((days[i + FLAP_RAISES - 1] - days[i]).days < FLAP_SPAN_DAYS
                       for i in range(len(days) - FLAP_RAISES + 1))}

    def summary(self) -> dict:
        return {"label": self.label, "settings": self.settings, "flagged_now": len(self.flagged_now),
                "raised": self.raised, "cleared": self.cleared, "flapping": len(self.flapping)}


@dataclass
class Backtest:
    """The current and the proposed settings' outcomes over the same days and tutors."""

    rule: str
    first_day: dt.date
    last_day: dt.date
    names: dict[str, str | None]
    current: Outcome
    proposed: Outcome
    seconds: float
    stored_flagged: set[str] = field(default_factory=set)  # flagged by the rule now, as scoring stored it

    @property
    def newly_flagged(self) -> list[str]:
        return sorted(self.proposed.flagged_now - self.current.flagged_now)

    @property
    def no_longer_flagged(self) -> list[str]:
        return sorted(self.current.flagged_now - self.proposed.flagged_now)

    def as_dict(self) -> dict:
        return {"rule": self.rule, "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "tutors": len(self.names), "seconds": round(self.seconds, 2),
                "stored_flagged_now": len(self.stored_flagged),
                "current": self.current.summary(), "proposed": self.proposed.summary(),
                "newly_flagged": [{"tutor_id": t, "name": self.names.get(t)} for t in self.newly_flagged],
                "no_longer_flagged": [{"tutor_id": t, "name": self.names.get(t)} for t in self.no_longer_flagged]}


Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Baseline:
    """What every what-if on one rule shares: the counts read, the flags stored, the current settings' replay."""

    names: dict[str, str | None]
    histories: list[TutorHistory]
    stored: set[str]
    current: Outcome
    made_at: float


def backtest(database: peewee.Database, rules: RuleSet, rule: str, changes: Mapping[str, str], last_day: dt.date,
             days: int = 90, progress: Progress | None = None,
             baselines: dict[tuple, Baseline] | None = None) -> Backtest:
    """Replay ``days`` days ending ``last_day`` under the rule's settings now and with ``changes`` (checked as a
    runtime change is: ValueError names a bad one). Reads only.

    ``baselines``, kept by a caller between calls (the dashboard's what-if), lets a series of previews reuse the
    read and the current settings' replay for up to ``BASELINE_SECONDS``, so each costs one replay, not two.
    """
    if rule not in rules.rules:
        raise ValueError(f"{rule!r} is not a loaded rule; loaded: {', '.join(rules.names) or 'none'}")
    if not 1 <= days <= 400:
        raise ValueError(f"--days must be 1 to 400, not {days}")
    proposed_rules = with_settings(rules, rule, changes)
    started = time.perf_counter()
    first_day = last_day - dt.timedelta(days=days - 1)
    key = (rule, tuple(sorted(rules.rules[rule].settings.items())), first_day, last_day)
    baseline = (baselines or {}).get(key)
    if baseline is None or time.monotonic() - baseline.made_at > BASELINE_SECONDS:
        names, histories = load_histories(database, first_day, last_day)
        with database.connection_context():
            stored = {tutor_id for (tutor_id,) in Sql(database).all(
                "SELECT tutor_id FROM tutor_scores WHERE rule = {p} AND flagged = {p}", (rule, True))}
        current = replay_all(rules, rule, histories, first_day, last_day, "current", _part(progress, 0, 2,
                                                                                           len(histories)))
        baseline = Baseline(names, histories, stored, current, time.monotonic())
        if baselines is not None:
            baselines.clear()  # one rule and settings at a time: the previous baseline's memory goes
            baselines[key] = baseline
    proposed = replay_all(proposed_rules, rule, baseline.histories, first_day, last_day, "proposed",
                          _part(progress, 1, 2, len(baseline.histories)))
    return Backtest(rule, first_day, last_day, baseline.names, baseline.current, proposed,
                    time.perf_counter() - started, baseline.stored)


def replay_all(rules: RuleSet, rule: str, histories: list[TutorHistory], first_day: dt.date, last_day: dt.date,
               label: str, progress: Progress | None = None) -> Outcome:
    """Every tutor's days replayed under ``rules``."""
    outcome = Outcome(label, dict(rules.rules[rule].settings))
    for index, history in enumerate(histories, start=1):
        replay(rules, rule, history, first_day, last_day, outcome)
        if progress:
            progress(index, len(histories))
    return outcome


def _part(progress: Progress | None, step: int, steps: int, size: int) -> Progress | None:
    """Progress of one of ``steps`` equal parts, reported as part of the whole."""
    if progress is None:
        return None
    return lambda done, _: progress(step * size + done, steps * size)


def replay(rules: RuleSet, rule: str, history: TutorHistory, first_day: dt.date, last_day: dt.date,
           into: Outcome) -> None:
    """One tutor's flag of ``rule`` on every day from ``first_day`` to ``last_day``, added to ``into``."""
    flagged = False
    flags: list[bool] = []
    day = first_day
    while day <= last_day:
        now = rules.assess(rule, history, end_of_day(day), flagged).flagged
        if flags and now != flagged:
            (into.raises if now else into.clears).setdefault(history.tutor_id, []).append(day)
        flagged = now
        flags.append(now)
        day += dt.timedelta(days=1)
    into.flags[history.tutor_id] = flags


def load_histories(database: peewee.Database, first_day: dt.date,
                   last_day: dt.date) -> tuple[dict[str, str | None], list[TutorHistory]]:
    """Every tutor with a session in the period (or the 90 days before it), as histories over daily counts."""
    sql = Sql(database)
    since = first_day - dt.timedelta(days=MAX_WINDOW_DAYS)
    by_tutor: dict[str, dict[dt.date, Counts]] = {}
    with database.connection_context():
        for row in sql.all(f"SELECT tutor_id, day, {', '.join(COUNT_FIELDS)} FROM tutor_daily_counts "
                           "WHERE day >= {p} AND day <= {p}", (to_db_day(since), to_db_day(last_day))):
            by_tutor.setdefault(row[0], {})[from_db_day(row[1])] = Counts._make(row[2:])
        names = dict(sql.all("SELECT tutor_id, name FROM tutors"))
    histories = [
        TutorHistory(tutor_id, names.get(tutor_id), DailyCounts(counts, since, last_day),
                     load_sessions=_whole_days_only,
                     load_reschedules=lambda after, until, tutor_id=tutor_id: _reschedules(database, tutor_id, after,
                                                                                             until))
        for tutor_id, counts in sorted(by_tutor.items())
    ]
    return {h.tutor_id: h.name for h in histories}, histories


def _whole_days_only(days: list[dt.date]) -> dict:
    raise RuntimeError("a replay scores whole days: no partial day should be read")


def _reschedules(database: peewee.Database, tutor_id: str, after: dt.datetime, until: dt.datetime) -> list:
    with database.connection_context():
        return load_reschedules(Sql(database), tutor_id, after, until)


def window_counts(database: peewee.Database, rules: RuleSet, rule: str, day: dt.date,
                  days: int) -> list[tuple[int, int]]:
    """Every tutor's (events, base) of ``rule``'s rate over the ``days`` days ending ``day``."""
    rate = rules.rules[rule].info.rate
    _, histories = load_histories(database, day, day)
    found = []
    for history in histories:
        metrics = rules.assess(rule, history, end_of_day(day), False).metrics
        events = metrics.get(rate.events_metric(days))
        base = history.window(days, end_of_day(day)).sessions if rate.base == "sessions" \
            else metrics.get(rate.base_metric(days))
        if events is not None and base:
            found.append((int(events), int(base)))
    return found
