"""``python -m bench.ingest``: run every shape and the live feed against real services; print the table."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

import redis

from bench.ingest import runs
from bench.ingest.cpu import CpuMeter
from bench.ingest.figures import RunFigures, Shape
from bench.ingest.sessions import live_sessions, shape_sessions
from engine.children import Service, answers, free_port, tqs_argv, wait_until
from engine.config import EMAIL_POLICIES
from engine.terminal import print_table
from engine.throwaway import PostgresUnavailable, admin_url, throwaway_postgres

TARGET_PER_SECOND = 1000
TARGET_LIVE_SECONDS = 1.0


def shapes(scale: float) -> list[Shape]:
    """The bench's own shape (about six sessions per tutor per batch) and a backfill's (one or two), both orders."""
    found = []
    for name, sessions, tutors, days, per_post in (("a", 10_000, 80, 90, 500), ("b", 6_000, 200, 25, 100)):
        for shuffled in (False, True):
            found.append(Shape(f"{name}{'s' if shuffled else 'o'}", round(sessions * scale), tutors, days, per_post,
                               shuffled))
    return found


def say(message: str) -> None:
    print(f"[bench.ingest] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every shape's session count")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads for the batch shapes")
    parser.add_argument("--api-workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--queue-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rate", type=float, default=100.0, help="live single-session POSTs per second")
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument("--new-tutor-share", type=float, default=0.2, help="live sessions from unseen tutors")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--redis-db", type=int, default=9, help="Redis DB number, flushed at start and end")
    parser.add_argument("--skip", action="append", default=[], choices=["throughput", "live"])
    parser.add_argument("--email-policy", default="off", choices=EMAIL_POLICIES,
                        help="TQS_EMAIL_POLICY of the worker (default off: scoring alone; bench.email measures email; "
                             "every-session shows what queued reports cost scoring)")
    parser.add_argument("--rules", help="TQS_RULES of the API and worker (default: every installed rule)")
    args = parser.parse_args()

    queue_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    try:
        redis.Redis.from_url(queue_url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        say(f"Redis at {queue_url} not reachable ({exc}); run `make services`")
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="tqs-ingest-bench-"))
    try:
        with throwaway_postgres(admin_url(), "ingest_bench") as database_url:
            figures = measure(args, database_url, queue_url, work_dir)
    except PostgresUnavailable as exc:
        say(f"{exc}; run `make services`")
        return 2
    finally:
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(queue_url, socket_connect_timeout=2).flushdb()
    print_summary(args, figures, work_dir)
    failed = [t for t in figures.throughput if not t.checks_ok]
    return 1 if failed or (figures.live and figures.live.never_visible) else 0


def measure(args: argparse.Namespace, database_url: str, queue_url: str, work_dir: Path) -> RunFigures:
    figures = RunFigures()
    say(f"database {database_url}, queue {queue_url}, logs in {work_dir}")
    say(f"ceiling: single-row INSERT+COMMIT on one connection for {args.ceiling_seconds:g}s")
    figures.commit_ceiling = runs.commit_ceiling(database_url, args.ceiling_seconds)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TQS_")}
    env.update(TQS_DATABASE_URL=database_url, TQS_QUEUE_URL=queue_url, TQS_API_KEYS=runs.API_KEY,
               TQS_DATA_DIR=str(work_dir / "data"), TQS_EMAIL_POLICY=args.email_policy)
    if args.rules:
        env["TQS_RULES"] = args.rules
    port = free_port()
    api = Service("api", tqs_argv("api", "--bind", f"127.0.0.1:{port}", "--workers", str(args.api_workers)), env,
                  work_dir)
    worker = Service("worker", tqs_argv("worker", "--workers", str(args.queue_workers)), env, work_dir)
    try:
        api.start()
        wait_until(lambda: _answers(port) or _died(api), 60, "the API to answer")
        worker.start()
        wait_until(lambda: "event=worker_started" in worker.log() or _died(worker), 60, "the worker to start")
        groups = {"api": api.process.pid, "worker": worker.process.pid}
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        tutors: list[str] = []
        if "throughput" not in args.skip:
            for shape in shapes(args.scale):
                records = shape_sessions(shape, now)
                tutors += sorted({r["tutor_id"] for r in records})
                say(f"throughput: {shape.sessions} sessions, {shape.label}, {args.clients} clients")
                meter = CpuMeter(groups, database_url)
                result = runs.throughput_run(port, database_url, shape, records, args.clients, args.drain_timeout)
                result.cpu = meter.usage()
                figures.throughput.append(result)
        if "live" not in args.skip:
            records = live_sessions(round(args.rate * args.live_seconds), tutors, args.new_tutor_share,
                                    dt.datetime.now(dt.UTC))
            say(f"live: {len(records)} single-session POSTs at {args.rate:g}/s, {args.senders} senders")
            meter = CpuMeter(groups, database_url)
            figures.live = runs.live_run(port, database_url, records, args.rate, args.senders, 30.0)
            figures.live.cpu = meter.usage()
    finally:
        worker.stop()
        api.stop()
    return figures


def _answers(port: int) -> bool:
    return answers(f"http://127.0.0.1:{port}/api/health")


def _died(service: Service) -> bool:
    if not service.running():
        raise RuntimeError(f"{service.name} exited:\n{service.log()[-3000:]}")
    return False


def print_summary(args: argparse.Namespace, figures: RunFigures, work_dir: Path) -> None:
    ceiling = figures.commit_ceiling or float("nan")
    print(f"\nbench.ingest on {os.cpu_count()} cores: PostgreSQL + Redis, tqs api ({args.api_workers} gunicorn "
          f"workers), tqs worker ({args.queue_workers} processes, TQS_EMAIL_POLICY={args.email_policy}, "
          f"rules: {args.rules or 'all installed'}); "
          f"commit ceiling {ceiling:,.0f}/s; logs {work_dir}")
    rows = []
    for result in figures.throughput:
        scored = result.scored_per_second
        cpu = result.cpu.ms_per_session(result.shape.sessions) if result.cpu else {}
        rows.append([result.shape.label, f"{result.shape.sessions:,}", f"{result.accepted_per_second:,.0f}",
                     "-" if scored is None else f"{scored:,.0f}", "-" if scored is None else f"{scored / ceiling:.2f}",
                     "yes" if scored and scored >= TARGET_PER_SECOND else "NO",
                     " ".join(f"{role.split()[0]} {ms:.2f}" for role, ms in sorted(cpu.items())),
                     "ok" if result.checks_ok else f"FAILED: {result.checks}"])
    if rows:
        print_table([("shape", "left"), ("sessions", "right"), ("accepted/s", "right"), ("scored/s", "right"),
                     ("× ceiling", "right"), (f"≥{TARGET_PER_SECOND}/s", "left"), ("CPU ms/session", "left"),
                     ("check", "left")], rows)
        by_shape: dict[str, list[float]] = {}
        for result in figures.throughput:
            if result.scored_per_second:
                by_shape.setdefault(result.shape.name[0], []).append(result.scored_per_second)
        for name, rates in by_shape.items():
            if len(rates) == 2:
                print(f"shape {name}: time order / shuffled = {rates[0] / rates[1]:.2f} (target within 1.5×)")
        best = max(rows, key=lambda r: float(r[3].replace(",", "")) if r[3] != "-" else 0)
        worst = min(rows, key=lambda r: float(r[3].replace(",", "")) if r[3] != "-" else 0)
        print(f"best {best[0]}: {best[3]}/s; worst {worst[0]}: {worst[3]}/s")
    live = figures.live
    if live is not None:
        cpu = live.cpu.ms_per_session(live.offered) if live.cpu else {}
        verdict = "meets" if live.worst < TARGET_LIVE_SECONDS and not live.never_visible else "MISSES"
        print(f"live: {live.offered} single POSTs at {live.offered_rate:.1f}/s ({live.new_tutors} from new tutors), "
              f"statuses {dict(live.statuses)}; POST -> visible {live.summary()} ({verdict} worst < 1 s); "
              f"never visible {live.never_visible}")
        print("live CPU ms per session: " + ", ".join(f"{role} {ms:.2f}" for role, ms in sorted(cpu.items())))
        if live.cpu:
            print(f"live CPU: {live.cpu.describe()}")


if __name__ == "__main__":
    sys.exit(main())
