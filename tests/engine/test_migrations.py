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
    Tutor,
    TutorDailyCount,
    TutorMetric,
    TutorMetricSet,
    TutorTotal,
)
from engine.rescoring import rescore_all
from engine.windows import COUNT_FIELDS
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
    with database.connection_context():
        totals = {row.tutor_id: (row.sessions, row.rescheduled, row.tutor_reschedules) for row in TutorTotal.select()}
        sets = {row.tutor_id: row.metrics for row in TutorMetricSet.select()}
        database.drop_tables([TutorTotal, TutorMetricSet])
        database.execute_sql("DROP INDEX risk_events_tutor_id_rule_day_id")
        database.execute_sql("DELETE FROM schema_migrations WHERE version >= 9")
    assert migrate(database) == [9]
    with database.connection_context():
        assert {row.tutor_id: (row.sessions, row.rescheduled, row.tutor_reschedules)
                for row in TutorTotal.select()} == totals
        assert sum(sessions for sessions, _, _ in totals.values()) == 30
        assert {row.tutor_id: row.metrics for row in TutorMetricSet.select()} == sets
        assert set(sets) == {"t0", "t1", "t2"} and all(len(metrics) > 10 for metrics in sets.values())
        assert {row.tutor_id: {m.name: m.value for m in TutorMetric.select().where(TutorMetric.tutor == row.tutor_id)}
                for row in TutorMetricSet.select()} == sets
        assert "risk_events_tutor_id_rule_day_id" in {index.name for index in database.get_indexes("risk_events")}


def test_daily_counts_and_totals_store_exactly_the_counted_fields():
    for model in (TutorDailyCount, TutorTotal):
        assert [name for name in model._meta.sorted_field_names if name in COUNT_FIELDS] == list(COUNT_FIELDS)
    assert set(TutorTotal._meta.sorted_field_names) == {"tutor", *COUNT_FIELDS}
