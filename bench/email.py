"""Benchmark: email reports. The time to build and render one report (the first in a process, then each
after), and reports sent per second to a local SMTP server with STARTTLS and AUTH (a subprocess):
the transport's ceiling on one connection, one process sending report by report, and the real worker
(a Huey consumer on Redis and Postgres) draining a backlog. Usage:

    python -m bench.email [--reports 400] [--recipients 1] [--queue-workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from engine.children import Service, tqs_argv, wait_until
from engine.config import Settings
from engine.ingest import ingest
from engine.migrations import migrate
from engine.models import EmailReport
from engine.queue import create_huey
from engine.services import Services, build_services
from engine.tasks import register_tasks
from engine.terminal import print_table
from engine.throwaway import PostgresUnavailable, admin_url, throwaway_postgres
from notifications import outbox
from notifications.content import session_report
from notifications.delivery import deliver
from notifications.render import compose, render
from notifications.transports import SenderPool, open_transport
from simulator.generate import simulate

SENDER = "Tutor Quality <tq@example.com>"
RETRY_IN = dt.timedelta(minutes=1)


def say(message: str) -> None:
    print(f"[bench.email] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=int, default=400, help="reports per sending measurement")
    parser.add_argument("--recipients", type=int, default=1)
    parser.add_argument("--queue-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--redis-db", type=int, default=10, help="Redis DB number, flushed at start and end")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tqs-email-bench-"))
    sink = subprocess.Popen([sys.executable, "-m", "tests.support.smtp", str(work)], stdout=subprocess.PIPE, text=True)
    queue_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    try:
        smtp_url = sink.stdout.readline().strip()
        redis.Redis.from_url(queue_url).flushdb()
        with throwaway_postgres(admin_url(), "email_bench") as database_url:
            rows = measure(args, database_url, smtp_url, queue_url, work)
    except (PostgresUnavailable, redis.RedisError) as exc:
        say(f"{exc}; run `make services`")
        return 2
    finally:
        sink.kill()
        redis.Redis.from_url(queue_url).flushdb()
    print_table([("measure", "left"), ("figure", "right"), ("detail", "left")], rows,
                caption=f"{args.reports} reports each, {args.recipients} recipient(s), logs in {work}")
    return 0


def measure(args, database_url: str, smtp_url: str, queue_url: str, work: Path) -> list[list[str]]:
    recipients = tuple(f"admin{i}@example.com" for i in range(args.recipients))
    settings = Settings(data_dir=work, database_url=database_url, email_url=smtp_url, email_to=recipients,
                        email_from=SENDER, email_policy="off")
    services = build_services(settings)
    migrate(services.database)
    simulation = simulate(seed=1)
    say(f"seeding {len(simulation.sessions)} sessions of {len(simulation.tutors)} tutors (no reports yet)")
    with services.database.connection_context():
        ingest(services, simulation.sessions)
    session_ids = [record["session_id"] for record in simulation.sessions[-args.reports:]]
    rows = render_times(services, session_ids)
    rows += [ceiling(settings, services, session_ids[0], args.reports)]
    mailing = dataclasses.replace(services, settings=dataclasses.replace(settings, email_policy="every-session"))
    rows += [in_process(mailing, changed(simulation.sessions[-args.reports:], "bench-a"), args.reports)]
    rows += [worker(mailing, changed(simulation.sessions[-args.reports:], "bench-b"), args, queue_url, work)]
    return rows


def render_times(services: Services, session_ids: list[str]) -> list[list[str]]:
    """Content (reads), render (Jinja2 + premailer) and compose, for the first report and for each after."""
    timings = []
    with services.database.connection_context():
        for session_id in session_ids:
            started = time.perf_counter()
            content = session_report(services.settings, services.metric_names, session_id)
            read = time.perf_counter()
            rendered = render(content)
            drawn = time.perf_counter()
            message = compose(rendered, SENDER, ["ops@example.com"])
            done = time.perf_counter()
            timings.append((read - started, drawn - read, done - drawn, len(bytes(message))))
    first, rest = timings[0], timings[1:]

    def ms(values):
        return f"{1000 * statistics.median(values):.1f} ms"

    def p95(values):
        return f"p95 {1000 * statistics.quantiles(values, n=20)[-1]:.1f} ms"

    return [
        ["first report: read + render + compose", f"{1000 * sum(first[:3]):.1f} ms",
         f"read {1000 * first[0]:.1f}, render {1000 * first[1]:.1f}, compose {1000 * first[2]:.1f} ms"],
        ["each after: read", ms([t[0] for t in rest]), p95([t[0] for t in rest])],
        ["each after: render (Jinja2 + premailer)", ms([t[1] for t in rest]), p95([t[1] for t in rest])],
        ["each after: compose (MIME)", ms([t[2] for t in rest]), p95([t[2] for t in rest])],
        ["message size", f"{statistics.median([t[3] for t in rest]) / 1024:.1f} KB",
         f"largest {max(t[3] for t in timings) / 1024:.1f} KB (Gmail clips at 102 KB)"],
    ]


def ceiling(settings: Settings, services: Services, session_id: str, count: int) -> list[str]:
    """One rendered message sent ``count`` times over one STARTTLS + AUTH connection: the transport's limit."""
    with services.database.connection_context():
        message = compose(render(session_report(settings, services.metric_names, session_id)), SENDER,
                          ["ops@example.com"])
    started = time.perf_counter()
    with open_transport(settings.email_endpoint) as sender:
        for _ in range(count):
            sender.send(message, "ops@example.com")
    rate = count / (time.perf_counter() - started)
    return ["ceiling: one connection, same message", f"{rate:.0f}/s", "smtplib to aiosmtpd, STARTTLS + AUTH"]


def changed(records: list[dict], tag: str) -> list[dict]:
    """The same sessions with a new subject: changed, so each gets a new report."""
    return [{**record, "subject": f"{record.get('subject') or 'Session'} ({tag})"} for record in records]


def _store(services: Services, records: list[dict]) -> list[str]:
    with services.database.connection_context():
        report = ingest(services, records)
    return [done.tutor_id for done in report.rescore.rescored]


def in_process(services: Services, records: list[dict], count: int) -> list[str]:
    """``deliver`` report by report in this process: claim, read, render, record, connect, send, record."""
    report_ids = outbox.prepare_for_tutors(services, _store(services, records))
    started = time.perf_counter()
    senders = SenderPool(services.settings.email_endpoint)
    statuses = [deliver(services, report_id, RETRY_IN, senders.open).status for report_id in report_ids]
    elapsed = time.perf_counter() - started
    senders.close()
    assert statuses.count("sent") == count, statuses
    return ["one process, report by report", f"{count / elapsed:.0f}/s",
            f"{1000 * elapsed / count:.1f} ms a report (claim, read, render, 3 commits, send)"]


def worker(services: Services, records: list[dict], args, queue_url: str, work: Path) -> list[str]:
    """The real path: ``prepare_reports`` queued on Redis, a ``tqs worker`` consumer sends them all."""
    tutor_ids = _store(services, records)
    settings = services.settings
    env = {key: value for key, value in os.environ.items() if not key.startswith("TQS_")}
    env.update(TQS_DATABASE_URL=settings.database_url, TQS_QUEUE_URL=queue_url, TQS_DATA_DIR=str(work),
               TQS_EMAIL_URL=settings.email_url, TQS_EMAIL_TO=",".join(settings.email_to),
               TQS_EMAIL_FROM=settings.email_from, TQS_EMAIL_POLICY="every-session")
    consumer = Service("worker", tqs_argv("worker", "--workers", str(args.queue_workers)), env, work).start()
    try:
        wait_until(lambda: "event=worker_started" in consumer.log(), 60, "the worker to start")
        tasks = register_tasks(create_huey(queue_url), services)
        started = time.perf_counter()
        tasks.emails.prepare_reports(tutor_ids)

        def all_sent() -> bool:
            with services.database.connection_context():
                return EmailReport.select().where(EmailReport.status == "sent").count() >= 2 * args.reports
        wait_until(all_sent, 300, "the worker to send every report", interval=0.05)
        elapsed = time.perf_counter() - started
    finally:
        consumer.stop()
    return [f"worker, {args.queue_workers} processes, Redis + Postgres", f"{args.reports / elapsed:.0f}/s",
            f"{args.reports} reports queued to all sent in {elapsed:.2f} s"]


if __name__ == "__main__":
    sys.exit(main())
