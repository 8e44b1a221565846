import datetime as dt

import peewee
from playhouse.migrate import migrate as run_operations

from engine.ingest import ingest
from engine.migrations import MIGRATIONS, migrate, migrator_for, schema_version
from engine.models import (
    MODELS,
    EmailDelivery,
    EmailReport,
    InboxItem,
    RescoreWaiting,
    Session,
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorMetricSet,
)
from engine.rescoring import rescore_all
from engine.windows import TOTALS
from tests.conftest import NOW
from tests.factories import raw_session


def test_migrating_again_applies_nothing_and_every_table_exists(database):
    assert migrate(database) == []
    with database.connection_context():
        assert all(database.table_exists(model._meta.table_name) for model in MODELS)
    assert schema_version(database) == max(version for version, _, _ in MIGRATIONS)


def test_a_later_migration_adds_a_column_to_a_deployed_database(database):
    def add_timezone(db, migrator):
        run_operations(migrator.add_column("tutors", "timezone", peewee.CharField(max_length=64, null=True)))

    later = [*MIGRATIONS, (len(MIGRATIONS) + 1, "tutor timezone", add_timezone)]
    assert migrate(database, migrations=later) == [len(MIGRATIONS) + 1]
    assert migrate(database, migrations=later) == []
    with database.connection_context():
        columns = {c.name for c in database.get_columns(Tutor._meta.table_name)}
        assert "timezone" in columns
        run_operations(migrator_for(database).drop_column("tutors", "timezone"))
        database.execute_sql(f"DELETE FROM schema_migrations WHERE version > {len(MIGRATIONS)}")



def test_a_database_at_version_1_is_brought_up_to_date(database):
    """As deployed before the inbox, the rescore queue and email delivery existed: only migration 1 applied,
    with the first schema's (unused) email_reports table."""
    with database.connection_context():
        database.drop_tables([InboxItem, RescoreWaiting, EmailDelivery, EmailReport])
        database.execute_sql("CREATE TABLE email_reports (id INTEGER PRIMARY KEY, recipient VARCHAR(320))")
        database.execute_sql("DELETE FROM schema_migrations WHERE version > 1")
    assert migrate(database) == [version for version, _, _ in MIGRATIONS if version > 1]
    with database.connection_context():
        assert database.table_exists(InboxItem._meta.table_name)
        assert database.table_exists(RescoreWaiting._meta.table_name)
        assert {c.name for c in database.get_columns("email_reports")} >= {"report_key", "recipients", "message_id"}
        assert database.table_exists(EmailDelivery._meta.table_name)


def test_migration_9_sums_totals_and_gathers_metric_sets_from_the_rows_already_stored(database, services):
    """A database deployed before the running totals and the metric sets gets them from the daily counts
    and metric rows it already holds."""
    ingest(services, [raw_session(f"m{i}", f"t{i % 3}", NOW - dt.timedelta(days=i), "rescheduled" if i % 4 else
                                  "completed", "tutor") for i in range(30)])
    rescore_all(services)
    columns = [Tutor._meta.fields[column] for column in TOTALS]
    with database.connection_context():
        totals = sorted(Tutor.select(Tutor.tutor_id, *columns).tuples())
        sets = {row.tutor_id: row.metrics for row in TutorMetricSet.select()}
        for column in TOTALS:  # in place (SQLite 3.35+), not by rebuilding the table
            database.execute_sql(f"ALTER TABLE tutors DROP COLUMN {column}")
        database.drop_tables([TutorMetricSet])
        database.execute_sql("DROP INDEX risk_events_tutor_id_rule_day_id")
        database.execute_sql("DELETE FROM schema_migrations WHERE version >= 9")
    assert migrate(database) == [9]
    with database.connection_context():
        assert TutorDailyCount.select().count() > 0  # the tables cascading from tutors kept their rows
        assert sorted(Tutor.select(Tutor.tutor_id, *columns).tuples()) == totals
        assert sum(row[1] for row in totals) == 30 and sum(row[3] for row in totals) == 22
        assert {row.tutor_id: row.metrics for row in TutorMetricSet.select()} == sets
        grouped: dict = {}
        for m in TutorMetric.select():
            grouped.setdefault(m.tutor_id, {}).setdefault(m.rule, {})[m.name] = m.value
        assert sets == grouped and set(sets) == {"t0", "t1", "t2"}
        assert "risk_events_tutor_id_rule_day_id" in {index.name for index in database.get_indexes("risk_events")}


def test_columns_added_to_tutors_keep_every_row_that_cascades_from_them(database, services):
    """On SQLite a NOT NULL column added in two steps rebuilds the table, and dropping the old tutors table
    deleted every session and count with it (migration 6, from a database at version 5)."""
    ingest(services, [raw_session(f"k{i}", f"t{i % 3}", NOW - dt.timedelta(days=i), "completed") for i in range(9)])
    with database.connection_context():
        for column in ("settings_version", *TOTALS):
            database.execute_sql(f"ALTER TABLE tutors DROP COLUMN {column}")
        database.execute_sql("DELETE FROM schema_migrations WHERE version >= 6")
    assert migrate(database) == [version for version, _, _ in MIGRATIONS if version >= 6]
    with database.connection_context():
        assert Session.select().count() == 9 and TutorDailyCount.select().count() == 9
        assert sum(Tutor.select(Tutor.total_sessions).scalars()) == 9
