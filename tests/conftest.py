"""Fixtures build the stack the way the product does: settings -> database -> rules.

Storage and pipeline tests run on SQLite and on a real PostgreSQL. Postgres is a
throwaway database created for this test run; without a reachable server the Postgres
cases skip with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from dashboard.browser_driver import ARTIFACTS_DIR, chromium_missing, launch
from engine.config import Settings
from engine.db import bind_database, open_database, release_connections
from engine.migrations import migrate
from engine.registry import load_rules
from engine.ruleset import RuleSet
from engine.services import Services
from tests.support import outside_rule as outside_rule_package
from tests.support.databases import empty_database, throwaway_postgres, under_ci

pytest_plugins = ["tests.support.stack"]  # subprocess stacks: make_stack, private_redis, sqlite_database

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway Postgres database for this run, dropped at the end."""
    with throwaway_postgres() as url:
        yield url


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
    empty_database(db)
    try:
        yield db
    finally:
        empty_database(db)
        release_connections(db)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright; skipped where it is missing, except under CI=true."""
    missing = chromium_missing()
    if missing:
        if under_ci():
            pytest.fail("CI=true requires the browser tests: " + missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def outside_rule(tmp_path_factory) -> Iterator[Path]:
    """The outside rule package installed for this module's tests; the folder to put on PYTHONPATH."""
    with outside_rule_package.installed(tmp_path_factory.mktemp("site")) as site:
        yield site


@pytest.fixture
def rules(settings) -> RuleSet:
    return load_rules(settings)


@pytest.fixture
def services(settings, database, rules) -> Services:
    """The core's dependencies on the parametrized database, with the clock stopped at ``NOW``."""
    return Services(settings, database, rules, clock=lambda: NOW)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Name the folder of screenshots this run saved, so a reviewer can look at them."""
    started = getattr(config, "_tqs_started", None)
    if started is None or not ARTIFACTS_DIR.exists():
        return
    saved = [path for path in ARTIFACTS_DIR.rglob("*.png") if path.stat().st_mtime >= started]
    if saved:
        terminalreporter.write_sep("-", f"screenshots saved: {len(saved)} in {ARTIFACTS_DIR}")


def pytest_configure(config) -> None:
    config._tqs_started = time.time()
