"""Benchmark: worker CPU for one live session, one tutor's rescore, and one tutor's 90-day backfill.

In-process on a throwaway PostgreSQL database (``TQS_TEST_DATABASE_URL``'s server), seeded with
50 tutors of 10 sessions each over the last 90 days. CPU is this process's (``time.process_time``):
what a worker spends, not the database server's. Statements are counted at ``execute_sql``.

    python -m bench.rescore_cost [--repeat 200] [--profile] [--rules RULE,...]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable

from engine.config import Settings
from engine.db import bind_database, open_database, release_connections
from engine.ingest import ingest
from engine.migrations import migrate
from engine.registry import load_rules
from engine.rescoring import rescore_waiting
from engine.services import Services
from engine.storing import store_sessions
from engine.terminal import print_table
from engine.throwaway import PostgresUnavailable, admin_url, throwaway_postgres
from engine.validation import validate_session


class StatementCounter:
    """Counts the statements a database runs, by wrapping its ``execute_sql``."""

    def __init__(self, database):
        self.count = 0
        original = database.execute_sql

        def counted(sql, params=None, *args, **kwargs):
            self.count += 1
            return original(sql, params, *args, **kwargs)

        database.execute_sql = counted


def session(session_id: str, tutor_id: str, when: dt.datetime, rng: random.Random) -> dict:
    moved = rng.random() < 0.15
    record = {"session_id": session_id, "tutor_id": tutor_id, "student_id": f"s{rng.randrange(500)}",
              "scheduled_time": when.isoformat(), "status": "rescheduled" if moved else "completed"}
    if moved:
        record["reschedule_info"] = {"initiator": "tutor", "reason": "traffic"}
    return record


def measure(label: str, repeat: int, setup: Callable[[int], object], action: Callable[[object], None],
            counter: StatementCounter) -> list[str]:
    cpu, statements = [], []
    for index in range(repeat):
        prepared = setup(index)
        before_statements, started = counter.count, time.process_time()
        action(prepared)
        cpu.append(1000 * (time.process_time() - started))
        statements.append(counter.count - before_statements)
    cpu.sort()
    return [label, f"{statistics.median(cpu):.2f}", f"{cpu[int(0.9 * (len(cpu) - 1))]:.2f}", f"{max(cpu):.2f}",
            f"{statistics.median(statements):.0f}"]


def run(url: str, repeat: int, profile: bool, rules: frozenset[str] | None = None) -> None:
    database = bind_database(open_database(url))
    migrate(database)
    settings = Settings(database_url=url, rules=rules)
    print(f"rules: {', '.join(load_rules(settings).names)}", file=sys.stderr)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    services = Services(settings, database, load_rules(settings), clock=lambda: now)
    rng = random.Random(1)
    seed = [session(f"seed-{t}-{i}", f"tutor-{t:02d}", now - dt.timedelta(days=rng.uniform(0, 90)), rng)
            for t in range(50) for i in range(10)]
    rows = []
    with database.connection_context():
        ingest(services, seed)
        counter = StatementCounter(database)

        def live(index: int):
            return [validate_session(session(f"live-{index}", f"tutor-{rng.randrange(50):02d}",
                                              now - dt.timedelta(minutes=rng.uniform(5, 60)), rng))]

        rows.append(measure("live session: store + rescore", repeat, live,
                            lambda records: (store_sessions(services, records), rescore_waiting(services)), counter))
        rows.append(measure("  of which store", repeat, live, lambda records: store_sessions(services, records),
                            counter))
        rows.append(measure("  of which rescore (change today)", repeat,
                            lambda index: store_sessions(services, live(repeat + index)),
                            lambda _: rescore_waiting(services), counter))

        def backfill(index: int):
            tutor = f"backfill-{index}"
            store_sessions(services, [validate_session(session(f"{tutor}-{day}", tutor, now - dt.timedelta(days=day,
                                                                                                         hours=2), rng))
                                      for day in range(90)])

        rows.append(measure("90-day backfill of one tutor: rescore", max(repeat // 10, 5), backfill,
                            lambda _: rescore_waiting(services), counter))
        if profile:
            profiler = cProfile.Profile()
            records = [live(10_000 + i) for i in range(repeat)]
            profiler.enable()
            for batch in records:
                store_sessions(services, batch)
                rescore_waiting(services)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
            print(f"cProfile of {repeat} live sessions (own time):\n" + out.getvalue())
    release_connections(database)
    print_table([("operation (PostgreSQL, 50 tutors x 10 sessions)", "left"), ("CPU ms median", "right"),
                 ("p90", "right"), ("max", "right"), ("statements", "right")], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of live sessions")
    parser.add_argument("--rules", help="comma-separated rules to run (default: every installed rule)")
    args = parser.parse_args()
    try:
        with throwaway_postgres(admin_url(), "rescore_bench") as url:
            run(url, args.repeat, args.profile,
                frozenset(r.strip() for r in args.rules.split(",") if r.strip()) if args.rules else None)
    except PostgresUnavailable as exc:
        print(f"bench.rescore_cost: {exc}; run `make services`", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
