"""Benchmark: scoring cost per session as history grows, on SQLite and PostgreSQL.

Replays a 90-day history in time order (as a backfill does, so almost every session is
"late"), in batches, and prints sessions per second per tenth of the run: flat figures
mean the cost does not grow with history. Usage:

    python -m bench.pipeline [--sessions 9000] [--tutors 80] [--batch 1] [--database URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time

from engine.config import Settings
from engine.db import bind_database, open_database
from engine.ingest import ingest
from engine.migrations import migrate
from engine.models import ScoreSnapshot
from engine.registry import load_rules
from engine.services import Services
from engine.throwaway import PostgresUnavailable, admin_url, throwaway_postgres

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


def sessions(count: int, tutors: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    propensity = [rng.choice([0.03, 0.05, 0.08, 0.25]) for _ in range(tutors)]
    start = NOW - dt.timedelta(days=90)
    records = []
    for i in range(count):
        tutor = rng.randrange(tutors)
        when = start + dt.timedelta(seconds=90 * 86400 * i / count)
        moved = rng.random() < propensity[tutor]
        record = {"session_id": f"b{i}", "tutor_id": f"tutor-{tutor:05d}", "student_id": f"s{rng.randrange(5000)}",
                  "scheduled_time": when.isoformat(), "status": "rescheduled" if moved else "completed"}
        if moved:
            record["reschedule_info"] = {"initiator": "tutor", "reason": "personal"}
        records.append(record)
    return records


def run(url: str, count: int, tutors: int, batch: int) -> None:
    database = bind_database(open_database(url))
    migrate(database)
    settings = Settings(database_url=url)
    services = Services(settings, database, load_rules(settings), clock=lambda: NOW)
    records = sessions(count, tutors)
    tenth = max(count // 10, batch)
    started = last = time.perf_counter()
    rates = []
    with database.connection_context():  # a worker keeps its connection between tasks
        for offset in range(0, count, batch):
            ingest(services, records[offset:offset + batch], batch)  # stored, then its tutors rescored
            done = offset + batch
            if done % tenth < batch:
                now = time.perf_counter()
                rates.append(tenth / (now - last))
                last = now
        elapsed = time.perf_counter() - started
        snapshots = ScoreSnapshot.select().count()
    print(f"{url.split(':')[0]:<10} sessions={count} tutors={tutors} batch={batch}: {count / elapsed:.0f} sessions/s "
          f"({1000 * elapsed / count:.2f} ms each); snapshot rows kept={snapshots}")
    print("  sessions/s per tenth of the run: " + " ".join(f"{r:.0f}" for r in rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6000)
    parser.add_argument("--tutors", type=int, default=80)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--database", action="append", help="database URL (repeatable); default SQLite and Postgres")
    args = parser.parse_args()
    if args.database:
        for url in args.database:
            run(url, args.sessions, args.tutors, args.batch)
        return
    run(f"sqlite:///{tempfile.mkdtemp()}/bench.db", args.sessions, args.tutors, args.batch)
    try:
        with throwaway_postgres(admin_url(), "pipeline_bench") as url:
            run(url, args.sessions, args.tutors, args.batch)
    except PostgresUnavailable as exc:
        print(f"{exc}: skipping PostgreSQL")


if __name__ == "__main__":
    main()
