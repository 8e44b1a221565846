"""Databases for tests: throwaway PostgreSQL ones (skipped without a server, except under CI=true) and a reset."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import peewee
import pytest

from engine.models import MODELS
from engine.throwaway import PostgresUnavailable, admin_url
from engine.throwaway import throwaway_postgres as create_throwaway


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def throwaway_postgres(label: str = "test") -> Iterator[str]:
    """A new empty database's URL; skips (fails under CI=true) when no server answers."""
    try:
        with create_throwaway(admin_url(), label) as url:
            yield url
    except PostgresUnavailable as exc:
        if under_ci():
            pytest.fail(f"CI=true requires PostgreSQL: {exc}")
        pytest.skip(str(exc))


def empty_database(database: peewee.Database) -> None:
    """Delete every row of every table, children first."""
    with database.connection_context(), database.atomic():
        for model in reversed(MODELS):
            model.delete().execute()
