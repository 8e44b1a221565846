"""Rescore tutors: the ones waiting after a store (coalesced), or every tutor (the hourly roll-forward).

A rescore runs every rule over the tutor's days from the earliest day that changed to
today, in one transaction holding the tutor's row lock, and writes what changed.

Why that is exact: a store locks the row of every tutor it touches (its tutor upsert) and
marks the tutor waiting in the same transaction, so while a rescore holds the tutor's lock
no store of that tutor can commit. The rescore reads the waiting row under the lock (its
earliest day is then final), and deletes it in the same transaction. Waiting tutors are
claimed with a lease (``FOR UPDATE SKIP LOCKED`` on Postgres), only so that workers share
the work: a claim whose lease lapsed and was taken again costs a second worker a wait on
the lock, after which it finds the row gone and does nothing. A worker that dies
mid-rescore rolls back, and its lease lapses for another worker to take over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.audit import causes_since
from engine.db import write_transaction
from engine.history import first_session_day, load_history, recount_all_days
from engine.logs import log_event
from engine.models import RescoreWaiting, Tutor
from engine.results import (
    clear_derived,
    load_failures,
    load_snapshots,
    stored_metric_names,
    write_current,
    write_events,
    write_failures,
    write_snapshots,
)
from engine.ruleset import RuleError
from engine.series import compute_series, transitions
from engine.services import Services
from engine.sql import Sql, from_db_day, from_db_time, to_db_day, to_db_time
from engine.windows import day_of

# Daily history is kept for about 13 months: a session dated years back is stored and counted, but
# does not make the tutor's series be recomputed (and written) day by day from then.
HISTORY_HORIZON = dt.timedelta(days=400)
CLAIM_CHUNK = 16
RETRY_BACKOFF_SECONDS = (2, 8, 30, 120, 600)
BACKFILL_SESSIONS = 5_000  # this many still to store behind a batch is a backfill (seconds of storing), not live posts
log = logging.getLogger("tutor_quality.rules")


@dataclass(frozen=True)
class Claim:
    """A waiting tutor taken by this worker until ``lease_until`` (which also tells this claim from a later one)."""

    tutor_id: str
    waiting_since: dt.datetime
    lease_until: dt.datetime


@dataclass(frozen=True)
class Rescored:
    """One tutor rescored: its flag now, how long it had waited, the rescore's own time."""

    tutor_id: str
    flagged: bool
    days: int
    waited_seconds: float
    ms: float


@dataclass
class RescoreRound:
    """What one pass over the waiting tutors did."""

    rescored: list[Rescored] = field(default_factory=list)
    failures: dict[str, Exception] = field(default_factory=dict)
    more_waiting: bool = False


def rescore_tutor(services: Services, tutor_id: str, *, through_today: bool = False, rebuild: bool = False,
                  claim: Claim | None = None, only_rule: str | None = None) -> Rescored | None:
    """Rescore one tutor in one transaction, from the earliest day its waiting row names (else from its
    last snapshot, or its first session), and clear the waiting row; ``None`` when there was nothing to do.

    With ``claim``, the rescore is skipped when the waiting row is gone: another worker did it
    since. Snapshots are written up to the tutor's latest session day, or with ``through_today``
    up to today. Time only moves forward for a tutor: a clock behind its last scoring is taken
    as that moment instead.

    With ``only_rule``, that rule alone is recomputed over the tutor's history (after it changed,
    back to the history horizon); every other rule's results stay as stored, and so do the
    tutor's waiting row and how far its series is computed, for the other rules' next rescore.

    A rule that fails on this tutor (or failed to load) keeps its previous results, and the
    failure is recorded in ``rule_failures`` with the first day it missed; the next rescore in
    which it runs starts from that day, so the days it missed are computed after all.

    The first rescore of a tutor after a settings change names the change on the flags of its rule that it
    raises or clears from the day of the change on (:func:`engine.rulestore.causes_since`).
    """
    started = time.perf_counter()
    sql = Sql(services.database)
    with write_transaction(services.database):
        row = sql.all(
            "SELECT name, series_through, scored_at, settings_version FROM tutors WHERE tutor_id = {p}" + sql.lock_row,
            (tutor_id,))
        waiting = sql.all("SELECT from_day FROM rescore_waiting WHERE tutor_id = {p}", (tutor_id,))
        if not row or (claim and not waiting):
            return None
        name, series_through, scored_at, scored_version = row[0]
        series_through, scored_at = from_db_day(series_through), from_db_time(scored_at)
        earliest = from_db_day(waiting[0][0]) if waiting else None
        if rebuild:  # from the first session, whatever was waiting
            clear_derived(tutor_id)
            recount_all_days(tutor_id)
            series_through = earliest = None
        rules = services.refresh_rules()  # the latest settings, even a change made a moment ago
        running = frozenset({only_rule}) if only_rule else frozenset(rules.names)
        if only_rule:  # the rule's whole history
            earliest = first_session_day(tutor_id)
        failing = load_failures(sql, tutor_id)
        missed = min((day for rule, day in failing.items() if rule in running), default=None)
        if missed and (earliest is None or missed < earliest):  # days a rule missed are computed now
            earliest = missed
        now = max(services.clock(), scored_at or services.clock())
        today = day_of(now)
        changed_from = earliest or series_through or first_session_day(tutor_id) or today
        start = max(min(changed_from, series_through or changed_from, today), today - HISTORY_HORIZON)
        history = load_history(services.database, tutor_id, name, start, today)
        latest = history.daily.last_active or start
        persist_end = today if through_today else min(max(latest, series_through or start, start), today)
        existing = load_snapshots(sql, tutor_id, start - dt.timedelta(days=1), persist_end)
        before = existing.get(start - dt.timedelta(days=1))
        previous_flags = dict(before.flags) if before else {}
        series = compute_series(rules, history, start, now, previous_flags, only=running)
        points, current = series.points, series.points[-1]
        failed = {rule: (rules.rules[rule].info.version, exc.problem) for rule, exc in series.failures.items()}
        failed.update({rule: ("", f"failed to load: {error}") for rule, error in rules.failed.items()})
        advice = {}
        for rule in current.assessments:
            try:
                advice[rule] = rules.advise(rule, history, current.as_of, current.assessments)
            except RuleError as exc:  # its verdict stands; the advice is missing and the failure recorded
                failed[rule] = (rules.rules[rule].info.version, exc.problem)
        kept = frozenset(failed) - frozenset(current.assessments) | (frozenset(rules.names) - running)
        carried = {metric for rule in kept if rule in rules.rules for metric in rules.rules[rule].info.metrics}
        carried |= stored_metric_names(sql, tutor_id, kept - frozenset(rules.rules))
        write_snapshots(sql, tutor_id, [p for p in points if p.day <= persist_end], existing, kept, carried)
        write_events(sql, tutor_id, start, transitions(points, previous_flags), now, current.assessments,
                     causes_since(services.recent_changes, scored_version or 0), series_through)
        verdicts = write_current(sql, tutor_id, current, advice, kept)
        write_failures(sql, tutor_id, failed, current.assessments, kept, start, now, failing)
        for rule, exc in series.failures.items():
            log_event(log, "rule_failed", logging.ERROR, rule=rule, tutor_id=tutor_id, error=exc.problem)
        verdicts.update({rule: (a.flagged, a.risk_score) for rule, a in current.assessments.items()})
        flagged = any(flag for flag, _ in verdicts.values())
        risk = rules.overall_risk({rule: risk for rule, (_, risk) in verdicts.items()})
        through = series_through if only_rule else max(persist_end, series_through or persist_end)
        sql.run("UPDATE tutors SET series_through = {p}, flagged = {p}, risk_score = {p}, scored_at = {p}, "
                "settings_version = {p} WHERE tutor_id = {p}",
                (to_db_day(through) if through else None, flagged, risk, to_db_time(now),
                 max(services.settings_version, scored_version or 0), tutor_id))
        if waiting and not only_rule:
            sql.run("DELETE FROM rescore_waiting WHERE tutor_id = {p}", (tutor_id,))
    waited = (now - claim.waiting_since).total_seconds() if claim else 0.0
    return Rescored(tutor_id, flagged, len(points), max(waited, 0.0), 1000 * (time.perf_counter() - started))


def coalescing_delay(sessions_behind: int, least_seconds: float, most_seconds: float) -> dt.timedelta:
    """How long a touched tutor waits for its rescore while other scoring tasks are queued (for a change
    within the last week; see :func:`claim_waiting`): ``most_seconds`` while a backfill is being stored
    (``BACKFILL_SESSIONS`` or more still to store behind the batch just stored), else ``least_seconds``.

    A backfill's sessions of the same tutors are still to come, so a rescore before they have landed is
    mostly done again: each tutor waits, to be rescored about once after them (or after the most, so that
    scores are never staler than that beyond the queue's own wait). Live posts hold few sessions however
    many tasks they queue, so they wait only the least.
    """
    return dt.timedelta(seconds=most_seconds if sessions_behind >= BACKFILL_SESSIONS else least_seconds)


def sessions_accepted_after(services: Services, inbox_id: int) -> int:
    """Sessions accepted after inbox row ``inbox_id``: in a first-in first-out queue, about those still to be
    stored behind it. (Counting the pending rows instead walks the index entries of every row stored since
    the last vacuum: 70 ms a call during a backfill, where this reads one primary key.)"""
    sql = Sql(services.database)
    with services.database.connection_context():
        [(newest,)] = sql.all("SELECT MAX(id) FROM inbox")
    return max((newest or 0) - inbox_id, 0)


def claim_waiting(services: Services, limit: int, lease: dt.timedelta,
                  delay: dt.timedelta = dt.timedelta(0)) -> list[Claim]:
    """Take up to ``limit`` waiting tutors that are due, oldest first.

    A tutor is due once it has waited ``delay`` if its change is within the last week, twice that
    within the last 30 days, four times that further back: a rescore costs about one day of work
    per day it recomputes, so tutors whose changes reach far back wait longer for more of their
    sessions, and the rescore work per second does not depend on how far back sessions land.
    """
    sql = Sql(services.database)
    now = services.clock()
    today = day_of(now)
    with write_transaction(services.database):
        rows = sql.all(
            "UPDATE rescore_waiting SET claimed_until = {p} WHERE tutor_id IN ("
            "SELECT tutor_id FROM rescore_waiting WHERE (claimed_until IS NULL OR claimed_until < {p}) "
            "AND waiting_since <= CASE WHEN from_day >= {p} THEN {p} WHEN from_day >= {p} THEN {p} ELSE {p} END "
            "ORDER BY waiting_since LIMIT {p}" + sql.skip_locked + ") "
            "RETURNING tutor_id, waiting_since",
            (to_db_time(now + lease), to_db_time(now), to_db_day(today - dt.timedelta(days=7)), to_db_time(now - delay),
             to_db_day(today - dt.timedelta(days=30)), to_db_time(now - 2 * delay), to_db_time(now - 4 * delay), limit),
        )
    claims = [Claim(tutor_id, from_db_time(since), now + lease) for tutor_id, since in rows]
    return sorted(claims, key=lambda claim: claim.waiting_since)


def release(services: Services, claims: list[Claim]) -> None:
    """Give back claims this worker will not get to (while still its own), so another takes them at once."""
    if claims:
        sql = Sql(services.database)
        with write_transaction(services.database):
            for claim in claims:
                sql.run("UPDATE rescore_waiting SET claimed_until = NULL WHERE tutor_id = {p} AND claimed_until = {p}",
                        (claim.tutor_id, to_db_time(claim.lease_until)))


def _record_failure(services: Services, claim: Claim, error: Exception) -> None:
    """Keep the tutor waiting, retried after a growing pause, with the error for ``/api/health``."""
    sql = Sql(services.database)
    with write_transaction(services.database):
        attempts = sql.all("SELECT attempts FROM rescore_waiting WHERE tutor_id = {p}", (claim.tutor_id,))
        count = attempts[0][0] if attempts else 0
        pause = RETRY_BACKOFF_SECONDS[min(count, len(RETRY_BACKOFF_SECONDS) - 1)]
        sql.run("UPDATE rescore_waiting SET claimed_until = {p}, attempts = attempts + 1, last_error = {p} "
                "WHERE tutor_id = {p} AND claimed_until = {p}",
                (to_db_time(services.clock() + dt.timedelta(seconds=pause)), f"{type(error).__name__}: {error}"[:2000],
                 claim.tutor_id, to_db_time(claim.lease_until)))


def rescore_waiting(services: Services, *, delay: dt.timedelta = dt.timedelta(0), budget_seconds: float | None = None,
                    lease: dt.timedelta = dt.timedelta(seconds=60),
                    on_rescored: Callable[[Rescored], None] | None = None) -> RescoreRound:
    """Rescore the waiting tutors that are due (see :func:`claim_waiting`; with no ``delay``, all of them)
    until none is left or ``budget_seconds`` is spent. A tutor that fails stays waiting and is retried later."""
    outcome = RescoreRound()
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    more = True
    while more:  # another pass only if this one was full: tutors stored since are their storers' to rescore
        claims = claim_waiting(services, CLAIM_CHUNK, lease, delay)
        more = len(claims) == CLAIM_CHUNK
        for index, claim in enumerate(claims):
            if deadline is not None and time.monotonic() > deadline:
                release(services, claims[index:])
                outcome.more_waiting = True
                return outcome
            try:
                done = rescore_tutor(services, claim.tutor_id, claim=claim)
            except Exception as exc:  # a rule raised, or the database went away: the tutor stays waiting
                outcome.failures[claim.tutor_id] = exc
                with contextlib.suppress(Exception):  # the database is gone: the lease lapses on its own
                    _record_failure(services, claim, exc)
                continue
            if done:
                outcome.rescored.append(done)
                if on_rescored:
                    on_rescored(done)
    return outcome


def rescore_all(services: Services, *, rebuild: bool = False, only_rule: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Roll every tutor's windows forward to now and snapshot through today (one transaction per tutor).

    With ``rebuild``, first forget everything derived and recompute from the sessions alone; with
    ``only_rule``, recompute that rule's whole history and leave the others' results as they are.
    """
    with services.database.connection_context():
        tutor_ids = [t.tutor_id for t in Tutor.select(Tutor.tutor_id).order_by(Tutor.tutor_id)]
        for done, tutor_id in enumerate(tutor_ids, start=1):
            rescore_tutor(services, tutor_id, through_today=True, rebuild=rebuild, only_rule=only_rule)
            if progress:
                progress(done, len(tutor_ids))
    return len(tutor_ids)


def claimable_count(services: Services) -> int:
    """Waiting tutors no worker holds (never claimed, or the lease lapsed)."""
    with services.database.connection_context():
        return RescoreWaiting.select().where(
            RescoreWaiting.claimed_until.is_null() | (RescoreWaiting.claimed_until < services.clock())).count()


def waiting_count() -> int:
    """Tutors waiting for a rescore (the caller holds a connection)."""
    return RescoreWaiting.select().count()
