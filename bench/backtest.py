"""Benchmark: how long a backtest over 90 days takes at 1,000 tutors (``tqs backtest``, the dashboard's what-if).

The simulator's 90 days for 1,000 tutors (437 sessions a day: the default volume per tutor) are
stored through the product's storing path into a throwaway PostgreSQL database (and a SQLite file),
then each backtest is timed end to end: reading the counts, replaying every tutor's 90 days under the
current and the proposed settings.

    python -m bench.backtest [--tutors 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from engine.backtest import backtest
from engine.config import Settings
from engine.db import bind_database, open_database, release_connections
from engine.migrations import migrate
from engine.registry import load_rules
from engine.services import Services
from engine.storing import store_sessions
from engine.terminal import print_table
from engine.throwaway import PostgresUnavailable, admin_url, throwaway_postgres
from engine.validation import validate_session
from simulator.generate import simulate

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
PROPOSALS = (("threshold 15 -> 12", {"threshold": "12"}), ("rate -> evidence", {"flag_policy": "evidence"}),
             ("window 30 -> 7", {"window_days": "7"}))


def seed(url: str, sessions: list[dict]) -> object:
    database = bind_database(open_database(url))
    migrate(database)
    settings = Settings(database_url=url)
    services = Services(settings, database, load_rules(settings), clock=lambda: NOW)
    records = [validate_session(raw) for raw in sessions]
    with database.connection_context():
        for start in range(0, len(records), 1000):
            store_sessions(services, records[start:start + 1000])
    return database


def time_backtests(label: str, database) -> list[list[str]]:
    rules = load_rules(Settings())
    rule = rules.names[0]  # the first rule listed (rank 0 among those that ship)
    rows = []
    for name, changes in PROPOSALS:
        started = time.perf_counter()
        result = backtest(database, rules, rule, changes, NOW.date(), 90)
        seconds = time.perf_counter() - started
        rows.append([label, f"{rule}: {name}", f"{len(result.names):,}", f"{seconds:.1f}",
                     f"{1e6 * seconds / (2 * 90 * len(result.names)):.0f}",
                     f"{len(result.current.flagged_now)} -> {len(result.proposed.flagged_now)}"])
        print(f"  {label}: {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    baselines: dict = {}  # the dashboard's what-if: the next preview reuses the read and the current replay
    backtest(database, rules, rule, {"threshold": "14"}, NOW.date(), 90, baselines=baselines)
    started = time.perf_counter()
    result = backtest(database, rules, rule, {"threshold": "12"}, NOW.date(), 90, baselines=baselines)
    seconds = time.perf_counter() - started
    rows.append([label, f"{rule}: the next what-if preview (threshold 12)", f"{len(result.names):,}",
                 f"{seconds:.1f}", f"{1e6 * seconds / (90 * len(result.names)):.0f}",
                 f"{len(result.current.flagged_now)} -> {len(result.proposed.flagged_now)}"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tutors", type=int, default=1000)
    args = parser.parse_args()
    simulation = simulate(seed=1, tutors=args.tutors, sessions_per_day=35 * args.tutors / 80, now=NOW)
    print(f"{len(simulation.sessions):,} sessions for {args.tutors:,} tutors", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tq-backtest-") as tmp:
        database = seed(f"sqlite:///{Path(tmp) / 'backtest.db'}", simulation.sessions)
        rows += time_backtests("SQLite", database)
        database.close()
    try:
        with throwaway_postgres(admin_url(), "backtest_bench") as url:
            database = seed(url, simulation.sessions)
            rows += time_backtests("PostgreSQL", database)
            release_connections(database)
    except PostgresUnavailable as exc:
        print(f"bench.backtest: PostgreSQL skipped: {exc}", file=sys.stderr)
    print_table([("database", "left"), ("proposal", "left"), ("tutors", "right"),
                 ("seconds", "right"), ("µs per tutor-day", "right"), ("flagged today", "right")], rows,
                caption="a backtest over 90 days: current and proposed settings, every tutor replayed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
