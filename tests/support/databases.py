"""Throwaway PostgreSQL databases for tests: created on the test server, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import pytest

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def admin_url() -> str:
    return os.environ.get("TQS_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


@contextlib.contextmanager
def throwaway_postgres(label: str = "test") -> Iterator[str]:
    """A new empty database's URL; skips (fails under CI=true) when no server answers."""
    import psycopg2

    url = admin_url()
    try:
        admin = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        message = f"PostgreSQL not reachable at {url} (set TQS_TEST_DATABASE_URL): {exc}".strip()
        if under_ci():
            pytest.fail("CI=true requires PostgreSQL: " + message)
        pytest.skip(message)
    admin.autocommit = True
    name = f"tqs_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(url)._replace(path="/" + name))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
