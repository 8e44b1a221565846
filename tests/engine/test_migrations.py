import peewee
from playhouse.migrate import migrate as run_operations

from engine.migrations import MIGRATIONS, migrate, migrator_for, schema_version
from engine.models import MODELS, EmailDelivery, EmailReport, InboxItem, RescoreWaiting, Tutor


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
