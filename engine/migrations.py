"""Versioned schema migrations, applied in order and recorded in ``schema_migrations``.

An empty database gets today's schema straight from the models, stamped with every
version. A deployed one gets the pending migrations, in order: later ones use
``playhouse.migrate`` (add a column, an index...), so it evolves with ``tqs init-db`` and no
manual step. Concurrent callers on Postgres serialize on an advisory lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import peewee
from playhouse.migrate import PostgresqlMigrator, SchemaMigrator, SqliteMigrator

from engine.db import is_postgres
from engine.history import recount_totals
from engine.logs import log_event
from engine.models import (
    MODELS,
    ApiKey,
    EmailDelivery,
    EmailReport,
    InboxItem,
    RateLimitWindow,
    Reschedule,
    RescoreWaiting,
    RiskEvent,
    RuleFailure,
    RuleSettingValue,
    SchemaMigration,
    ScoreSnapshot,
    Session,
    SettingsChange,
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorMetricSet,
    TutorScore,
)
from engine.windows import TOTALS, day_of, session_counts

Migration = Callable[[peewee.Database, SchemaMigrator], None]
logger = logging.getLogger("tutor_quality.engine")
_ADVISORY_LOCK_KEY = 7_311_942  # arbitrary, constant: "tutor quality schema"


def _create_schema(database: peewee.Database, migrator: SchemaMigrator) -> None:
    database.create_tables(
        [Tutor, Session, Reschedule, TutorDailyCount, TutorScore, TutorMetric, ScoreSnapshot, RiskEvent],
        safe=True,
    )


def _create_inbox(database: peewee.Database, migrator: SchemaMigrator) -> None:
    database.create_tables([InboxItem], safe=True)


def _create_rescore_waiting(database: peewee.Database, migrator: SchemaMigrator) -> None:
    database.create_tables([RescoreWaiting], safe=True)


def _create_email_reports(database: peewee.Database, migrator: SchemaMigrator) -> None:
    # The first schema's email_reports table was never written to: replace it with today's shape.
    database.drop_tables([EmailDelivery, EmailReport], safe=True)
    database.create_tables([EmailReport, EmailDelivery], safe=True)


def _count_first_sessions(database: peewee.Database, migrator: SchemaMigrator) -> None:
    """Two daily counts the first-session rule reads, backfilled from the stored sessions."""
    present = {column.name for column in database.get_columns("tutor_daily_counts")}
    for name in ("first_session_no_shows", "first_session_tutor_reschedules"):
        if name not in present:  # a schema created by an earlier migration from today's models has them
            migrator.add_column("tutor_daily_counts", name, TutorDailyCount._meta.fields[name]).run()
    totals: dict[tuple[str, object], list[int]] = {}
    query = (Session.select(Session.tutor, Session.scheduled_time, Session.status, Reschedule.initiator)
             .join(Reschedule, peewee.JOIN.LEFT_OUTER, on=(Reschedule.session == Session.session_id))
             .where(Session.is_first_session == True, Session.status.in_(("no_show", "rescheduled")))  # noqa: E712
             .tuples())
    for tutor_id, scheduled, status, initiator in query:
        counts = session_counts(status, initiator, True)
        total = totals.setdefault((tutor_id, day_of(scheduled)), [0, 0])
        total[0] += counts.first_session_no_shows
        total[1] += counts.first_session_tutor_reschedules
    for (tutor_id, day), (no_shows, moved) in totals.items():
        TutorDailyCount.update(first_session_no_shows=no_shows, first_session_tutor_reschedules=moved).where(
            (TutorDailyCount.tutor == tutor_id) & (TutorDailyCount.day == day)).execute()
    database.create_tables([RuleFailure], safe=True)


def _create_runtime_settings(database: peewee.Database, migrator: SchemaMigrator) -> None:
    database.create_tables([RuleSettingValue, SettingsChange], safe=True)
    if "settings_version" not in {column.name for column in database.get_columns("tutors")}:
        # in one ALTER: two steps rebuild the table on SQLite, whose drop cascades to every tutor's rows
        migrator.add_column("tutors", "settings_version", Tutor._meta.fields["settings_version"],
                            allow_not_null=True).run()


def _create_api_keys_and_seal_personal_data(database: peewee.Database, migrator: SchemaMigrator) -> None:
    """Named keys and rate-limit windows; a sealed student name outgrows 200 characters (``tqs rotate-key``
    seals the names and reasons stored before)."""
    database.create_tables([ApiKey, RateLimitWindow], safe=True)
    if is_postgres(database):
        database.execute_sql("ALTER TABLE sessions ALTER COLUMN student_name TYPE text")


def _index_reads(database: peewee.Database, migrator: SchemaMigrator) -> None:
    """A metric's page read along one index (its ties by id), instead of sorting every tutor."""
    database.execute_sql("CREATE INDEX IF NOT EXISTS tutor_metrics_name_value_tutor_id "
                         "ON tutor_metrics (name, value, tutor_id)")
    database.execute_sql("DROP INDEX IF EXISTS tutor_metrics_name_value")


def _reads_along_indexes(database: peewee.Database, migrator: SchemaMigrator) -> None:
    """Reading one tutor costs the same however long its history: all-time totals kept on its row, and each
    rule's last risk event before a day found from an index's end. A page of tutors reads each tutor's
    metric values from one row, and every sort of the list reads one index from either end (ties by id in
    the index), in place of the single-column ones."""
    present = {column.name for column in database.get_columns("tutors")}
    for name in TOTALS:
        if name not in present:  # a schema created by an earlier migration from today's models has them
            # NOT NULL DEFAULT 0 in one ALTER: on SQLite, adding it in two steps rebuilds the table, and dropping
            # the old one would delete every tutor's rows in the tables that cascade from it
            migrator.add_column("tutors", name, Tutor._meta.fields[name], allow_not_null=True).run()
    recount_totals(database)
    database.create_tables([TutorMetricSet], safe=True)
    _gather_metric_sets(database)
    database.execute_sql("CREATE INDEX IF NOT EXISTS risk_events_tutor_id_rule_day_id "
                         "ON risk_events (tutor_id, rule, day, id)")
    Tutor._schema.create_indexes(safe=True)
    for name in ("tutors_flagged", "tutors_risk_score", "tutors_scored_at", "tutors_flagged_risk_score"):
        database.execute_sql(f"DROP INDEX IF EXISTS {name}")


def _gather_metric_sets(database: peewee.Database) -> None:
    """Each tutor's current metric values, a row each in ``tutor_metrics``, gathered into one row by rule."""
    sets: dict[str, dict[str, dict[str, float | None]]] = {}
    for tutor_id, rule, name, value in database.execute_sql("SELECT tutor_id, rule, name, value FROM tutor_metrics"):
        sets.setdefault(tutor_id, {}).setdefault(rule, {})[name] = value
    rows = [{"tutor": tutor_id, "metrics": metrics} for tutor_id, metrics in sorted(sets.items())]
    TutorMetricSet.delete().execute()
    for start in range(0, len(rows), 500):
        TutorMetricSet.insert_many(rows[start:start + 500]).execute()


def _postgres_search_indexes(database: peewee.Database) -> None:
    """Trigram indexes, so searching tutors by part of a name or id reads the index, not every tutor.

    Postgres only, and on new and migrated databases alike (the models cannot declare them). A server
    without the pg_trgm extension, or a role that may not create it, searches by scanning instead.
    """
    present = database.execute_sql("SELECT COUNT(*) FROM pg_indexes WHERE indexname IN "
                                   "('tutors_name_trgm', 'tutors_tutor_id_trgm')").fetchone()[0]
    if present == 2:  # checked first: CREATE INDEX IF NOT EXISTS would lock the table at every start
        return
    try:
        with database.atomic():  # a savepoint: a refused extension leaves the migration's transaction usable
            database.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            for column in ("name", "tutor_id"):
                database.execute_sql(f"CREATE INDEX IF NOT EXISTS tutors_{column}_trgm ON tutors "
                                     f"USING gin ({column} gin_trgm_ops)")
    except peewee.DatabaseError as exc:
        log_event(logger, "search_index_unavailable", logging.WARNING, error=str(exc).splitlines()[0])


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "create schema", _create_schema),
    (2, "inbox of accepted sessions", _create_inbox),
    (3, "tutors waiting for a rescore", _create_rescore_waiting),
    (4, "email reports and their deliveries", _create_email_reports),
    (5, "first-session outcome counts and rule failures", _count_first_sessions),
    (6, "rule settings changed at runtime, and their audit trail", _create_runtime_settings),
    (7, "named API keys, rate limits, personal data sealed", _create_api_keys_and_seal_personal_data),
    (8, "reads along indexes: metric pages", _index_reads),
    (9, "reads along indexes: one tutor's as its history grows, every sort of the list", _reads_along_indexes),
]


def migrate(
    database: peewee.Database, now: dt.datetime | None = None,
    migrations: list[tuple[int, str, Migration]] | None = None,
) -> list[int]:
    """Apply pending migrations in version order; returns the versions applied (empty when up to date)."""
    now = now or dt.datetime.now(dt.UTC)
    migrator = migrator_for(database)
    applied: list[int] = []
    with database.connection_context(), database.atomic():
        if is_postgres(database):
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
        database.create_tables([SchemaMigration], safe=True)
        done = {row.version for row in SchemaMigration.select(SchemaMigration.version)}
        fresh = not done and not database.table_exists(Tutor._meta.table_name)
        if fresh:
            database.create_tables(MODELS, safe=True)
        for version, name, apply in sorted(MIGRATIONS if migrations is None else migrations):
            if version in done:
                continue
            if not fresh:
                apply(database, migrator)
            SchemaMigration.create(version=version, name=name, applied_at=now)
            applied.append(version)
        if is_postgres(database):
            _postgres_search_indexes(database)
    return applied


def migrator_for(database: peewee.Database) -> SchemaMigrator:
    """The playhouse.migrate migrator for this kind of database."""
    return PostgresqlMigrator(database) if is_postgres(database) else SqliteMigrator(database)


def schema_version(database: peewee.Database) -> int:
    """The highest applied migration, 0 for an empty database."""
    with database.connection_context():
        if not database.table_exists(SchemaMigration._meta.table_name):
            return 0
        return SchemaMigration.select(peewee.fn.MAX(SchemaMigration.version)).scalar() or 0
