"""Write what scoring derived: daily snapshots, risk events, current scores and metrics.

Each writer compares with what is stored and writes only rows that changed, so a rescore
that changes nothing writes (almost) nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.models import (
    RiskEvent,
    RuleFailure,
    ScoreSnapshot,
    TutorDailyCount,
    TutorMetric,
    TutorMetricSet,
    TutorScore,
)
from engine.personal import personal_data
from engine.rulekit import Advice
from engine.ruleset import ENGINE_OWNER
from engine.series import RiskTransition, SeriesPoint
from engine.sql import Sql, flatten, from_db_day, from_db_json, from_db_time, to_db_day, to_db_json, to_db_time

SETTINGS_CHANGE = "settings_change"  # the key of an event's explanation naming the change that caused it


@dataclass(frozen=True)
class StoredSnapshot:
    as_of: dt.datetime
    metrics: dict
    flags: dict


def load_snapshots(sql: Sql, tutor_id: str, first: dt.date, last: dt.date) -> dict[dt.date, StoredSnapshot]:
    rows = sql.all(
        "SELECT day, as_of, metrics, flags FROM score_snapshots WHERE tutor_id = {p} AND day >= {p} AND day <= {p}",
        (tutor_id, to_db_day(first), to_db_day(last)),
    )
    return {from_db_day(day): StoredSnapshot(from_db_time(as_of), from_db_json(metrics), from_db_json(flags))
            for day, as_of, metrics, flags in rows}


def write_snapshots(sql: Sql, tutor_id: str, points: Iterable[SeriesPoint],
                    existing: Mapping[dt.date, StoredSnapshot], kept: frozenset[str] = frozenset(),
                    carried: frozenset[str] | set[str] = frozenset()) -> int:
    """Upsert the snapshots whose values changed; returns how many were written.

    The flags of ``kept`` rules (which did not run) and the ``carried`` metrics (theirs) are
    carried over from the stored snapshot of the day, or of the latest day before it.
    """
    rows = []
    points = list(points)
    latest = existing.get(points[0].day - dt.timedelta(days=1)) if points else None
    for point in points:
        old = existing.get(point.day)
        base = old or latest  # a day not stored before carries what was last known
        latest = base
        metrics, flags = point.metrics, point.flags
        if base:
            metrics = {**{name: value for name, value in base.metrics.items() if name in carried}, **metrics}
            flags = {**{rule: flag for rule, flag in base.flags.items() if rule in kept}, **flags}
        if old and old.as_of == point.as_of and old.metrics == metrics and old.flags == flags:
            continue
        rows.append((tutor_id, to_db_day(point.day), to_db_time(point.as_of), to_db_json(metrics), to_db_json(flags),
                     any(flags.values())))
    if rows:
        sql.run(
            "INSERT INTO score_snapshots (tutor_id, day, as_of, metrics, flags, flagged) "
            f"VALUES {sql.rows(len(rows), 6)} "
            "ON CONFLICT (tutor_id, day) DO UPDATE SET as_of = excluded.as_of, metrics = excluded.metrics, "
            "flags = excluded.flags, flagged = excluded.flagged",
            flatten(rows),
        )
    return len(rows)


def write_events(sql: Sql, tutor_id: str, start: dt.date, found: list[RiskTransition], now: dt.datetime,
                 rules: Iterable[str], causes: Mapping[str, Mapping[str, Any]] | None = None,
                 scored_through: dt.date | None = None) -> None:
    """Make the stored events of ``rules`` from ``start`` on equal the derived ones, keeping rows that still
    hold exactly; other rules' events are left alone.

    ``causes`` maps a rule to the settings change this rescore is the first to apply: a new event of that
    rule records it when dated on or after the change's day, or the tutor's last scored day
    (``scored_through``) if earlier, as the days from there on are computed under the new settings. An event
    rewritten later (its day's counts moved) keeps the cause it was raised with.
    """
    causes = causes or {}
    rules = sorted(rules)
    if not rules:
        return
    stored = {
        (rule, kind, from_db_day(day)): (event_id, severity, from_db_json(explanation))
        for event_id, rule, kind, day, severity, explanation in sql.all(
            "SELECT id, rule, kind, day, severity, explanation FROM risk_events WHERE tutor_id = {p} AND day >= {p} "
            f"AND rule IN ({sql.marks(len(rules))})",
            (tutor_id, to_db_day(start), *rules),
        )
    }
    wanted = {(t.rule, t.kind, t.day): t for t in found}
    kept = {key for key, (_, severity, explanation) in stored.items()
            if key in wanted and (severity, _without_cause(explanation)) == (wanted[key].severity,
                                                                               wanted[key].explanation)}
    stale = [event_id for key, (event_id, _, _) in stored.items() if key not in kept]
    if stale:
        sql.run(f"DELETE FROM risk_events WHERE id IN ({sql.marks(len(stale))})", stale)
    fresh = []
    for key, t in sorted(wanted.items()):
        if key in kept:
            continue
        earlier = stored[key][2].get(SETTINGS_CHANGE) if key in stored else None
        cause = causes.get(t.rule)
        since = min(cause["on"], scored_through.isoformat()) if cause and scored_through else (cause or {}).get("on")
        caused_by = earlier or (cause if cause and t.day.isoformat() >= since else None)
        explanation = {**t.explanation, SETTINGS_CHANGE: dict(caused_by)} if caused_by else t.explanation
        fresh.append((tutor_id, t.rule, t.kind, to_db_day(t.day), to_db_time(t.occurred_at), t.severity,
                      to_db_json(explanation), to_db_time(now)))
    if fresh:
        sql.run(
            "INSERT INTO risk_events (tutor_id, rule, kind, day, occurred_at, severity, explanation, recorded_at) "
            f"VALUES {sql.rows(len(fresh), 8)}",
            flatten(fresh),
        )


def _without_cause(explanation: Mapping[str, Any]) -> Mapping[str, Any]:
    return {k: v for k, v in explanation.items() if k != SETTINGS_CHANGE} if SETTINGS_CHANGE in explanation \
        else explanation


def write_current(sql: Sql, tutor_id: str, current: SeriesPoint, advice: Mapping[str, Advice],
                  kept: frozenset[str] = frozenset()) -> dict[str, tuple[bool, float]]:
    """The current verdict of every rule that ran, and every current metric value that changed (compared
    with the tutor's metric set, rewritten with them; a row each in ``tutor_metrics``); returns the
    stored (flagged, risk score) of the ``kept`` rules, whose results stay as they are. Results of any
    other rule (disabled, uninstalled) go."""
    keep = {*current.assessments, *kept}
    stored_scores = sql.all("SELECT rule, flagged, risk_score FROM tutor_scores WHERE tutor_id = {p}", (tutor_id,))
    verdicts = {rule: (bool(flagged), float(risk)) for rule, flagged, risk in stored_scores if rule in kept}
    gone = sorted({rule for rule, _, _ in stored_scores} - keep)
    if gone:
        sql.run(f"DELETE FROM tutor_scores WHERE tutor_id = {{p}} AND rule IN ({sql.marks(len(gone))})",
                (tutor_id, *gone))
    scores = [
        (tutor_id, rule, a.version, a.flagged, a.severity, a.risk_score, to_db_json(a.explanation),
         personal_data.seal(to_db_json(advice[rule].insights if rule in advice else [])),
         personal_data.seal(to_db_json(advice[rule].recommendations if rule in advice else [])),
         to_db_time(current.as_of))
        for rule, a in sorted(current.assessments.items())
    ]
    if scores:
        sql.run(
            "INSERT INTO tutor_scores (tutor_id, rule, rule_version, flagged, severity, risk_score, explanation, "
            f"insights, recommendations, as_of) VALUES {sql.rows(len(scores), 10)} "
            "ON CONFLICT (tutor_id, rule) DO UPDATE SET rule_version = excluded.rule_version, "
            "flagged = excluded.flagged, severity = excluded.severity, risk_score = excluded.risk_score, "
            "explanation = excluded.explanation, insights = excluded.insights, "
            "recommendations = excluded.recommendations, as_of = excluded.as_of",
            flatten(scores),
        )
    found = sql.all("SELECT metrics FROM tutor_metric_sets WHERE tutor_id = {p}", (tutor_id,))
    stored = {name: (rule, value) for rule, values in (from_db_json(found[0][0]) if found else {}).items()
              for name, value in values.items()}
    gone = sorted(name for name, (rule, _) in stored.items() if rule != ENGINE_OWNER and rule not in keep)
    if gone:
        sql.run(f"DELETE FROM tutor_metrics WHERE tutor_id = {{p}} AND name IN ({sql.marks(len(gone))})",
                (tutor_id, *gone))
    owned = [(ENGINE_OWNER, current.activity)] + [(rule, a.metrics) for rule, a in sorted(current.assessments.items())]
    metrics = [
        (tutor_id, name, rule, value)
        for rule, values in owned
        for name, value in values.items()
        if stored.get(name) != (rule, value)
    ]
    if metrics:
        sql.run(
            f"INSERT INTO tutor_metrics (tutor_id, name, rule, value) VALUES {sql.rows(len(metrics), 4)} "
            "ON CONFLICT (tutor_id, name) DO UPDATE SET value = excluded.value, rule = excluded.rule",
            flatten(metrics),
        )
    if metrics or gone:
        kept_values = {name: owned_value for name, owned_value in stored.items() if name not in gone}
        kept_values.update((name, (rule, value)) for rule, values in owned for name, value in values.items())
        by_rule: dict[str, dict[str, Any]] = {}
        for name, (rule, value) in kept_values.items():
            by_rule.setdefault(rule, {})[name] = value
        sql.run("INSERT INTO tutor_metric_sets (tutor_id, metrics) VALUES ({p}, {p}) "
                "ON CONFLICT (tutor_id) DO UPDATE SET metrics = excluded.metrics", (tutor_id, to_db_json(by_rule)))
    return verdicts


def load_failures(sql: Sql, tutor_id: str) -> dict[str, dt.date]:
    """The rules failing on this tutor, with the first day each missed."""
    return {rule: from_db_day(day) for rule, day in
            sql.all("SELECT rule, from_day FROM rule_failures WHERE tutor_id = {p}", (tutor_id,))}


def write_failures(sql: Sql, tutor_id: str, failed: Mapping[str, tuple[str, str]], ran: Iterable[str],
                   kept: Iterable[str], from_day: dt.date, now: dt.datetime, stored: Iterable[str]) -> None:
    """Record the rules that failed on this tutor (rule -> (version, error)) from ``from_day`` on, keeping
    the earliest day each missed. Of the ``stored`` failures, a rule that ran without failing is
    forgotten, and so is one neither ``ran`` nor ``kept`` (disabled or uninstalled); a kept rule's
    failure waits for it to run."""
    keep = set(failed) | (set(kept) - set(ran))
    gone = sorted(set(stored) - keep)
    if gone:
        sql.run(f"DELETE FROM rule_failures WHERE tutor_id = {{p}} AND rule IN ({sql.marks(len(gone))})",
                (tutor_id, *gone))
    rows = [(tutor_id, rule, version, error[:2000], to_db_day(from_day), to_db_time(now))
            for rule, (version, error) in sorted(failed.items())]
    if rows:
        sql.run(f"INSERT INTO rule_failures (tutor_id, rule, rule_version, error, from_day, failed_at) VALUES "
                f"{sql.rows(len(rows), 6)} ON CONFLICT (tutor_id, rule) DO UPDATE SET "
                "rule_version = excluded.rule_version, error = excluded.error, failed_at = excluded.failed_at, "
                f"from_day = {sql.least}(rule_failures.from_day, excluded.from_day)",
                flatten(rows))


def stored_metric_names(sql: Sql, tutor_id: str, rules: Iterable[str]) -> set[str]:
    """The metrics stored for these rules (ones that did not load, so they cannot say what they produce)."""
    rules = sorted(rules)
    if not rules:
        return set()
    return {name for (name,) in sql.all(
        f"SELECT name FROM tutor_metrics WHERE tutor_id = {{p}} AND rule IN ({sql.marks(len(rules))})",
        (tutor_id, *rules))}


def clear_derived(tutor_id: str) -> None:
    """Forget everything derived for a tutor, so it can be rebuilt from its sessions."""
    for model in (ScoreSnapshot, RiskEvent, TutorScore, TutorMetric, TutorMetricSet, TutorDailyCount, RuleFailure):
        model.delete().where(model.tutor == tutor_id).execute()
