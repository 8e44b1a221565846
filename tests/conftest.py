"""Fixtures build the stack the way the product does: settings -> database -> plugin manager.

Storage and pipeline tests run on SQLite and on a real PostgreSQL. Postgres is a
throwaway database created for this test run; without a reachable server the Postgres
cases skip with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import peewee
import pluggy
import pytest

from engine.config import Settings
from engine.db import bind_database, open_database, release_connections
from engine.migrations import migrate
from engine.models import MODELS
from engine.registry import get_plugin_manager

pytest_plugins = ["tests.support.stack"]  # subprocess stacks: make_stack, private_redis, sqlite_database

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway Postgres database for this run, dropped at the end."""
    import psycopg2

    admin_url = os.environ.get("TQS_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    try:
        admin = psycopg2.connect(admin_url, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        message = f"PostgreSQL not reachable at {admin_url} (set TQS_TEST_DATABASE_URL): {exc}".strip()
        if _under_ci():
            pytest.fail("CI=true requires PostgreSQL: " + message)
        pytest.skip(message)
    admin.autocommit = True
    name = f"tqs_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(admin_url)._replace(path="/" + name))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(database_url) -> Iterator[peewee.Database]:
    """A migrated, empty database bound to the models; emptied again afterwards."""
    yield from _prepared(database_url)


@pytest.fixture
def postgres_database(postgres_url) -> Iterator[peewee.Database]:
    """The same on PostgreSQL only, for what only Postgres does (row locks, pools)."""
    yield from _prepared(postgres_url)


def _prepared(url: str) -> Iterator[peewee.Database]:
    db = bind_database(open_database(url, max_connections=8))
    migrate(db)
    _empty(db)
    try:
        yield db
    finally:
        _empty(db)
        release_connections(db)


def _empty(db: peewee.Database) -> None:
    with db.connection_context(), db.atomic():
        for model in reversed(MODELS):
            model.delete().execute()


@pytest.fixture
def pm(settings) -> pluggy.PluginManager:
    return get_plugin_manager(settings)
