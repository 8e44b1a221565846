"""Benchmark: the tutor reads at 10,000 tutors and about 265,000 sessions, over HTTP and in-process.

Uses the PostgreSQL database ``bench.dashboard`` seeds for 10,000 tutors (``tqs_bench_dashboard_10000``:
90 days at 3,000 sessions a day through the real pipeline), seeding it first when it is missing
(``--reseed`` rebuilds it; that takes a quarter of an hour or more, once). ``tqs api`` (gunicorn, the
documented 2 x cores workers) serves it, which also applies any pending migration. Then, for each read:

* ``GET /api/tutors`` sorted by the risk score and by rule metrics both ways, filtered by flag,
  searched (``q=``, by a tutor's surname and by part of an id), paged (``offset`` up to the last page,
  ``limit`` up to 500); ``GET /api/tutors/{id}`` and ``/history`` for 50 tutors in turn;
* the time of the HTTP request as a client sees it (one request per connection, as gunicorn's sync
  workers close each after the response; one client, requests one after another) and the time of the
  same ``engine.queries`` call in this process, interleaved, ``--repeat`` times each, p50/p95/p99;
* ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement each read sends (captured at ``execute_sql``),
  checked for sequential scans of big tables (a count of a good part of a table, the total beside a
  page, reads each row it counts whatever the plan, so its scan is shown as such); the plans are printed
  and saved under ``--out``.

Target: p95 under 20 ms over HTTP for every read, and every plan on indexes. Exit status 1 when a request
fails, or with ``--strict`` when a target is missed.

    python -m bench.reads [--repeat 40] [--reseed] [--out data/bench]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlparse

import psycopg2

from bench import SEEDED_SECRET_KEY
from bench.client import request
from bench.plans import Plan, captured, explain, render, table_rows
from bench.stack import Stack, documented_api_workers, private_redis, service_env, start_api, stop_all
from bench.targets import Progress, Verdict, add_strict, print_verdicts, spread_ms
from engine import queries
from engine.config import Settings
from engine.services import Services, build_services
from engine.terminal import print_table
from engine.windows import day_of

TUTORS = 10_000
TARGET_P95_MS = 20.0
SAMPLE_TUTORS = 50
progress = Progress("bench.reads")


@dataclass
class Case:
    """One read: its HTTP path and the same read in-process, for the ``i``-th repetition."""

    name: str
    path: Callable[[int], str]
    call: Callable[[int], object]
    http: list[float] = field(default_factory=list)
    local: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    plans: list[Plan] = field(default_factory=list)


def list_case(name: str, services: Services, **params) -> Case:
    query = {key: ("true" if value is True else "false" if value is False else value) for key, value in params.items()}
    path = "/api/tutors" + ("?" + urlencode(query) if query else "")
    search = params.get("q")
    return Case(name, lambda i: path, lambda i: queries.list_tutors(
        services.metric_names, flagged=params.get("flagged"), search=search, sort=params.get("sort", "-risk_score"),
        limit=params.get("limit", queries.DEFAULT_PAGE), offset=params.get("offset", 0)))


def build_cases(services: Services, sample: list[str], surname: str, id_part: str) -> list[Case]:
    rates = [rate for _, rate in services.metric_names.rates]  # rules are known only by what they declare
    metric, other = rates[0].metric(30), rates[-1].metric(90)
    last_page = TUTORS - queries.DEFAULT_PAGE
    today = day_of(services.clock())
    return [
        list_case("list, default sort (-risk_score)", services),
        list_case("list, sort risk_score ascending", services, sort="risk_score"),
        list_case(f"list, sort -{metric}", services, sort=f"-{metric}"),
        list_case(f"list, sort {metric} ascending", services, sort=metric),
        list_case(f"list, sort -{other}", services, sort=f"-{other}"),
        list_case("list, sort name", services, sort="name"),
        list_case("list, sort -updated_at", services, sort="-updated_at"),
        list_case("list, flagged=true", services, flagged=True),
        list_case(f"list, flagged=false, sort -{metric}", services, flagged=False, sort=f"-{metric}"),
        list_case(f"search q={surname} (a surname)", services, q=surname),
        list_case(f"search q={id_part} (part of an id)", services, q=id_part),
        list_case("page 2 (offset 50)", services, offset=50),
        list_case("page 101 (offset 5,000)", services, offset=5000),
        list_case(f"last page (offset {last_page:,})", services, offset=last_page),
        list_case(f"last page, sort -{metric}", services, offset=last_page, sort=f"-{metric}"),
        list_case("500 per page (limit 500)", services, limit=500),
        Case("GET /api/tutors/{id}", lambda i: f"/api/tutors/{sample[i % len(sample)]}",
             lambda i: queries.get_tutor_detail(sample[i % len(sample)], services.metric_names)),
        Case("GET /api/tutors/{id}/history (90 days)", lambda i: f"/api/tutors/{sample[i % len(sample)]}/history",
             lambda i: queries.get_tutor_history(sample[i % len(sample)], queries.DEFAULT_HISTORY_DAYS, today,
                                                 services.metric_names)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per read, HTTP and in-process each")
    parser.add_argument("--reseed", action="store_true", help="rebuild the 10,000-tutor database")
    parser.add_argument("--api-workers", type=int, default=documented_api_workers())
    parser.add_argument("--out", type=Path, default=Path("data/bench"))
    add_strict(parser)
    args = parser.parse_args()
    from bench.dashboard import database_url, seed, seeded  # the dashboard benchmark's database, shared

    url = database_url(TUTORS)
    if args.reseed or not seeded(url, TUTORS) or not scored(url):
        progress.say(f"seeding {urlparse(url).path.lstrip('/')} with {TUTORS:,} tutors through the pipeline "
                     "(once; later runs reuse it)")
        seed(url, TUTORS)
    else:
        progress.say(f"reusing {urlparse(url).path.lstrip('/')} ({TUTORS:,} tutors); --reseed rebuilds it")
    started = dt.datetime.now()
    logs = args.out / f"reads-{started:%Y%m%d-%H%M%S}"  # the services' logs
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(logs)
    data_dir = logs
    try:
        with private_redis(stack) as queue_url:
            start_api(stack, service_env(url, queue_url, data_dir, secret=SEEDED_SECRET_KEY, TQS_LOG_LEVEL="WARNING"),
                      args.api_workers)
            progress.say(f"API ({args.api_workers} gunicorn workers) on {stack.base}; VACUUM ANALYZE")
            vacuum_analyze(url)
            cases, plans_text = measure(url, data_dir, stack.port, args.repeat)
    finally:
        stop_all(stack)
    plans_path = args.out / f"reads-plans-{started:%Y%m%d-%H%M%S}.txt"
    plans_path.write_text(plans_text)
    print(plans_text)
    return report(cases, args, plans_path)


def scored(url: str) -> bool:
    """Every tutor scored and none waiting: a seeding that was interrupted while rescoring is not reused."""
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM tutors WHERE scored_at IS NULL) + (SELECT count(*) FROM "
                       "rescore_waiting)")
        return cursor.fetchone()[0] == 0


def vacuum_analyze(url: str) -> None:
    """The planner's statistics and the visibility map as autovacuum leaves them after a quiet while."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    connection.close()


def measure(url: str, data_dir: Path, port: int, repeat: int) -> tuple[list[Case], str]:
    services = build_services(Settings(database_url=url, data_dir=data_dir, secret_keys=(SEEDED_SECRET_KEY,)))
    database = services.database
    with database.connection_context():
        sample, surname, id_part = _sample(services)
        rows = table_rows(database)
    cases = build_cases(services, sample, surname, id_part)
    for number, case in enumerate(cases, start=1):
        for warm in range(2):  # the first request of a kind pays a gunicorn worker's and the pool's warm-up
            request(port, "GET", case.path(warm))
            with database.connection_context():
                case.call(warm)
        for i in range(repeat):
            started = time.perf_counter()
            status, body = request(port, "GET", case.path(i))
            case.http.append(time.perf_counter() - started)
            case.statuses[status] = case.statuses.get(status, 0) + 1
            if status != 200:
                progress.tick(case.name, f"{case.name}: HTTP {status} {body[:200]!r}")
            with database.connection_context():
                started = time.perf_counter()
                case.call(i)
                case.local.append(time.perf_counter() - started)
        with database.connection_context(), captured(database) as statements:
            case.call(0)
        with database.connection_context():
            case.plans = [explain(database, case.name, sql, params, rows) for sql, params in statements
                          if sql.lstrip().upper().startswith("SELECT")]
        http50, http95, _ = spread_ms(case.http)
        progress.say(f"{number}/{len(cases)} {case.name}: HTTP p50 {http50:.1f} ms p95 {http95:.1f} ms, "
                     f"{len(case.plans)} statements")
    return cases, render([plan for case in cases for plan in case.plans], rows)


def _sample(services: Services) -> tuple[list[str], str, str]:
    """Tutors to read (the riskiest half, a random half), the commonest surname, part of an id."""
    cursor = services.database.execute_sql("SELECT tutor_id FROM tutors ORDER BY risk_score DESC, tutor_id LIMIT %s",
                                           (SAMPLE_TUTORS // 2,))
    riskiest = [tutor_id for (tutor_id,) in cursor.fetchall()]
    everyone = [tutor_id for (tutor_id,) in services.database.execute_sql("SELECT tutor_id FROM tutors").fetchall()]
    rng = random.Random(1)
    sample = riskiest + rng.sample(sorted(set(everyone) - set(riskiest)), SAMPLE_TUTORS - len(riskiest))
    cursor = services.database.execute_sql(
        "SELECT split_part(name, ' ', 2) AS surname FROM tutors WHERE name LIKE '%% %%' GROUP BY surname "
        "ORDER BY count(*) DESC, surname LIMIT 1")
    surname = cursor.fetchone()[0]
    id_part = sample[-1][: max(4, len(sample[-1]) - 2)]  # e.g. tutor-042 of tutor-04217: a handful of matches
    return sample, surname, id_part


def report(cases: list[Case], args: argparse.Namespace, plans_path: Path) -> int:
    print(f"\nbench.reads: {TUTORS:,} tutors on PostgreSQL, tqs api x{args.api_workers} (gunicorn sync workers, one "
          f"request per connection, one client, sequential); {args.repeat} timed requests per read, ms")
    rows = []
    for case in cases:
        h50, h95, h99 = spread_ms(case.http)
        l50, l95, l99 = spread_ms(case.local)
        seq = sorted({table for plan in case.plans for table in plan.big_seq_scans})
        rows.append([case.name, f"{h50:.1f}", f"{h95:.1f}", f"{h99:.1f}", f"{l50:.1f}", f"{l95:.1f}", f"{l99:.1f}",
                     str(len(case.plans)), ("SEQ SCAN " + ",".join(seq) if seq else "indexes"
                                            + (" + a count: scan" if any(p.counts_most for p in case.plans) else "")),
                     json.dumps(case.statuses)])
    print_table([("read", "left"), ("HTTP p50", "right"), ("p95", "right"), ("p99", "right"),
                 ("in-process p50", "right"), ("p95", "right"), ("p99", "right"), ("statements", "right"),
                 ("plans", "left"), ("statuses", "left")], rows)
    print(f"plans saved to {plans_path}")
    verdicts = []
    for case in cases:
        _, h95, _ = spread_ms(case.http)
        _, l95, _ = spread_ms(case.local)
        verdicts.append(Verdict(f"{case.name}: p95 HTTP (in-process)", f"{h95:.1f} ms ({l95:.1f} ms)",
                                f"< {TARGET_P95_MS:.0f} ms", h95 < TARGET_P95_MS))
    failed = {status: count for case in cases for status, count in case.statuses.items() if status != 200}
    verdicts.append(Verdict("requests answered 200", "all" if not failed else f"not: {failed}", "all", not failed,
                            check=True))
    seq = [f"{plan.query}: {', '.join(plan.big_seq_scans)}" for case in cases for plan in case.plans
           if not plan.uses_index]
    verdicts.append(Verdict("EXPLAIN: statements with a sequential scan of a big table",
                            str(len(seq)), "0", not seq))
    for line in seq:
        print(f"  sequential scan: {line}")
    return print_verdicts("bench.reads: figures and targets", verdicts, args.strict)


if __name__ == "__main__":
    sys.exit(main())
