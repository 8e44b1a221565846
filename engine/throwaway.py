"""Throwaway PostgreSQL databases, for the tests and the benchmarks: created on a server, dropped afterwards.

The server is ``TQS_TEST_DATABASE_URL`` (default: the local ``postgres`` database over trust auth);
the caller passes it in.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server answered at the admin URL; the message says where and why."""


def admin_url(environ: dict[str, str] | None = None) -> str:
    return (os.environ if environ is None else environ).get("TQS_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)


@contextlib.contextmanager
def throwaway_postgres(url: str, label: str = "test", keep: bool = False) -> Iterator[str]:
    """A new empty database on the server at ``url``; dropped on exit unless ``keep``."""
    import psycopg2

    try:
        admin = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        raise PostgresUnavailable(f"PostgreSQL not reachable at {url} (set TQS_TEST_DATABASE_URL): {exc}".strip()) \
            from None
    admin.autocommit = True
    name = f"tqs_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(url)._replace(path="/" + name))
    finally:
        if not keep:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
