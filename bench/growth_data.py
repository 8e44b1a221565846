"""The databases of ``bench.growth``: one base scored through the real pipeline, grown 10x and 100x by copying.

The base (``tqs_bench_growth_1x``) is 30 days of simulated sessions of 100 tutors, about two a tutor a
day, stored and scored in-process by the pipeline. Each grown database starts as a copy of it
(``CREATE DATABASE ... TEMPLATE``) and then copies every tutor's rows in SQL:

* **by tutors**: each tutor's rows (sessions, reschedules, daily counts, scores, metrics, snapshots,
  risk events, inbox rows...) again under ``<tutor_id>-c<k>``: 1,000 or 10,000 tutors like the first 100;
* **by history**: each tutor's dated rows again, ``k`` x 31 days earlier (sessions ``<id>-h<k>``): 100
  tutors with 310 or 3,100 days of history, derived rows included, as if they had lived through it.

Copies of rows the pipeline wrote are exactly what it would write for such tutors, at a thousandth of
the time; every table is then ``VACUUM ANALYZE``d. The databases are kept for later runs
(``--reseed`` rebuilds them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2

from engine.config import Settings
from engine.db import release_connections
from engine.history import recount_totals
from engine.ingest import ingest
from engine.migrations import migrate
from engine.services import build_services
from engine.throwaway import admin_url
from simulator.generate import simulate

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)  # the clock of seeding and measuring alike
BASE_TUTORS = 100
BASE_DAYS = 30
SESSIONS_PER_TUTOR_DAY = 2
SHIFT_DAYS = 31  # longer than the base's span in UTC days, so shifted copies never share a day
# Synthetic data only: a fixed key, so the kept databases read back whatever data/ holds.
SECRET = "bench-growth-synthetic-data-only-not-a-real-key"
HISTORY_ONLY = ("sessions", "reschedules", "tutor_daily_counts", "score_snapshots", "risk_events", "inbox")
NEVER_COPIED = ("schema_migrations", "rescore_waiting")


@dataclass(frozen=True)
class Dataset:
    label: str
    tutors: int
    days: int
    factor: int  # copies of the base, itself included
    by: str  # "tutors" or "history" ("base" for 1x)

    @property
    def name(self) -> str:
        return f"tqs_bench_growth_{self.label}"


DATASETS = (
    Dataset("1x", BASE_TUTORS, BASE_DAYS, 1, "base"),
    Dataset("10x_tutors", BASE_TUTORS * 10, BASE_DAYS, 10, "tutors"),
    Dataset("100x_tutors", BASE_TUTORS * 100, BASE_DAYS, 100, "tutors"),
    Dataset("10x_history", BASE_TUTORS, SHIFT_DAYS * 10, 10, "history"),
    Dataset("100x_history", BASE_TUTORS, SHIFT_DAYS * 100, 100, "history"),
)


def settings_for(url: str) -> Settings:
    return Settings(database_url=url, data_dir=Path("data"), email_policy="off", secret_keys=(SECRET,))


def url_of(dataset: Dataset) -> str:
    return urlunparse(urlparse(admin_url())._replace(path=f"/{dataset.name}"))


def _admin():
    connection = psycopg2.connect(admin_url())
    connection.autocommit = True
    return connection


def ready(dataset: Dataset) -> bool:
    """Seeded completely (the last step stamps the database's comment)."""
    with _admin() as admin, admin.cursor() as cursor:
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                       (dataset.name,))
        row = cursor.fetchone()
    return bool(row) and row[0] == f"seeded {dataset.label}"


def prepare(datasets: tuple[Dataset, ...], reseed: bool, say: Callable[[str], None]) -> None:
    base = datasets[0]
    if reseed or not ready(base):
        say(f"seeding {base.name}: {BASE_TUTORS} tutors x {BASE_DAYS} days through the pipeline")
        _recreate(base.name)
        _seed_base(url_of(base))
        _finish(base)
    _migrate(base)  # before it is copied: a grown copy is then at the latest schema too
    for dataset in datasets[1:]:
        if reseed or not ready(dataset):
            say(f"seeding {dataset.name}: the base copied {dataset.factor} x by {dataset.by}")
            _recreate(dataset.name, template=base.name)
            _grow(url_of(dataset), dataset)
            _finish(dataset)
        else:
            say(f"reusing {dataset.name}; --reseed rebuilds it")
    for dataset in datasets[1:]:
        _migrate(dataset)


def _migrate(dataset: Dataset) -> None:
    """A kept database seeded before the latest migration gets it, as a deployed one would."""
    services = build_services(settings_for(url_of(dataset)))
    with services.database.connection_context():
        applied = migrate(services.database, NOW)
    release_connections(services.database)
    if applied:
        _finish(dataset)  # the new indexes' statistics


def _recreate(name: str, template: str | None = None) -> None:
    admin = _admin()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    admin.close()


def _seed_base(url: str) -> None:
    # the simulator's tutors need 90 days to unfold their habits: keep the last BASE_DAYS of them
    simulation = simulate(seed=1, tutors=BASE_TUTORS, sessions_per_day=BASE_TUTORS * SESSIONS_PER_TUTOR_DAY, now=NOW)
    since = (NOW - dt.timedelta(days=BASE_DAYS)).isoformat().replace("+00:00", "Z")
    sessions = [s for s in simulation.sessions if s["scheduled_time"] >= since]
    services = build_services(settings_for(url)).at(NOW)
    with services.database.connection_context():
        migrate(services.database, NOW)
        ingest(services, sessions)
    release_connections(services.database)


def _columns(cursor) -> dict[str, list[tuple[str, str]]]:
    """Every table's columns that a copy writes (serial ids are left to their sequences), with their types."""
    cursor.execute(
        "SELECT table_name, column_name, data_type, column_default FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position")
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind, default in cursor.fetchall():
        if not (default or "").startswith("nextval("):
            found.setdefault(table, []).append((column, kind))
    return found


def _copy_sql(table: str, columns: list[tuple[str, str]], by: str) -> str:
    """INSERT ... SELECT of every row of ``table`` once per ``k`` of ``generate_series``, renamed or shifted."""
    names, values = [], []
    for column, kind in columns:
        names.append(f'"{column}"')
        if by == "tutors" and column == "tutor_id":
            values.append(f"\"{column}\" || '-c' || k")
        elif column == "session_id":
            values.append(f"\"{column}\" || '-{by[0]}' || k")
        elif by == "history" and kind == "date":
            values.append(f'"{column}" - k * {SHIFT_DAYS}')
        elif by == "history" and kind.startswith("timestamp"):
            values.append(f"\"{column}\" - k * interval '{SHIFT_DAYS} days'")
        else:
            values.append(f'"{column}"')
    return (f'INSERT INTO "{table}" ({", ".join(names)}) SELECT {", ".join(values)} FROM "{table}" '
            "CROSS JOIN generate_series(1, %s) AS k ON CONFLICT DO NOTHING")


def _grow(url: str, dataset: Dataset) -> None:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        columns = _columns(cursor)
        tables = [t for t, cols in columns.items() if t not in NEVER_COPIED and
                  (t in HISTORY_ONLY if dataset.by == "history" else any(c == "tutor_id" for c, _ in cols))]
        parents = ("tutors", "sessions")  # before the rows that refer to them
        for table in [*parents, *sorted(set(tables) - set(parents))]:
            if table in tables:
                cursor.execute(_copy_sql(table, columns[table], dataset.by), (dataset.factor - 1,))
    connection.close()
    if dataset.by == "history":  # the copied days add to each tutor's all-time totals
        services = build_services(settings_for(url))
        with services.database.connection_context(), services.database.atomic():
            recount_totals(services.database)
        release_connections(services.database)


def _finish(dataset: Dataset) -> None:
    connection = psycopg2.connect(url_of(dataset))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute(f"COMMENT ON DATABASE \"{dataset.name}\" IS 'seeded {dataset.label}'")
    connection.close()
