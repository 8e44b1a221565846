"""Benchmark: the real HTTP ingestion path, POST /api/sessions -> inbox + Redis -> Huey workers -> scores.

Starts ``tqs api`` (gunicorn) and ``tqs worker`` as subprocesses on a throwaway PostgreSQL
database and a dedicated Redis DB number, then measures on this machine:

* throughput: N sessions of ~80 tutors over the past 90 days, POSTed as JSON arrays by
  concurrent clients: sessions/s accepted (202) and sessions/s scored end to end (until
  no inbox row is pending), then checks every session was processed exactly once;
* latency: single sessions dated "now" offered at a steady rate; POST start -> inbox row
  processed, p50 and p99;
* ceilings: a bare Falcon app under the same gunicorn settings, and single-row
  INSERT+COMMIT on the same PostgreSQL over one connection.

Progress goes to stderr every couple of seconds, the summary to stdout. Usage:

    python -m bench.ingest [--sessions 20000] [--batch 500] [--clients 4] [--rate 100] [--latency-seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import queue
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import redis

from bench.pipeline import NOW as PIPELINE_NOW
from bench.pipeline import sessions as history_sessions
from tests.support.processes import ApiClient, Service, free_port, tqs_argv, wait_until

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
API_KEY = "benchkey"
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
PROGRESS_SECONDS = 2.0
LATENCY_DRAIN_SECONDS = 60.0  # after the last offer, wait at most this long for stragglers (keeps a run < 5 min)
NOISE_CORES = 0.25  # other load above this during a phase gets a warning in the summary


def gunicorn_flags(workers: int) -> list[str]:
    """What ``tqs api`` passes to gunicorn (engine/cli.py), so the bare app runs under the same settings."""
    return ["--workers", str(workers), "--worker-class", "sync", "--no-control-socket", "--timeout", "30",
            "--graceful-timeout", "10", "--log-level", "warning"]


# --------------------------------------------------------------------------- small helpers


def say(message: str) -> None:
    print(f"[ingest {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def ticking(report: Callable[[], str], interval: float = PROGRESS_SECONDS) -> Iterator[None]:
    """Print ``report()`` to stderr every ``interval`` seconds while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            say(report())

    thread = threading.Thread(target=loop, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 2,000 values is the 1,980th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Poster:
    """One HTTP/1.1 connection per client thread. Keep-alive is asked for; gunicorn's sync workers close
    after every response anyway, and http.client then reconnects on the next request (counted)."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.connects = 0

    def post(self, body: bytes) -> int | str:
        """The HTTP status, or the exception's name when the request failed on the wire."""
        try:
            if self.connection.sock is None:
                self.connects += 1
            self.connection.request("POST", "/api/sessions", body=body, headers=HEADERS)
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            self.connection.close()
            return type(exc).__name__

    def close(self) -> None:
        self.connection.close()


@dataclass
class Tally:
    """Counters shared by client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    accepted_requests: int = 0
    accepted_sessions: int = 0
    connects: int = 0
    statuses: Counter = field(default_factory=Counter)

    def add(self, status: int | str, sessions: int) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[status] += 1
            if status == 202:
                self.accepted_requests += 1
                self.accepted_sessions += sessions


def connect(url: str):
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def scalar(connection, sql: str, params: tuple = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def inbox_statuses(connection) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM inbox GROUP BY status")
        return dict(cursor.fetchall())


@dataclass
class CpuUsage:
    """Cores used between two readings: the machine's busy total and ours by role; the rest is other load."""

    wall: float
    machine: float
    roles: dict[str, float]
    others: list[tuple[str, float]] = field(default_factory=list)  # the busiest processes that are not ours

    @property
    def other(self) -> float:
        return max(0.0, self.machine - sum(self.roles.values()))

    def describe(self) -> str:
        parts = ", ".join(f"{role} {cores:.2f}" for role, cores in sorted(self.roles.items(), key=lambda r: -r[1]))
        busiest = ", ".join(f"{name} {cores:.2f}" for name, cores in self.others if cores >= 0.05)
        return (f"{self.machine:.2f} of {os.cpu_count()} cores busy over {self.wall:.0f}s: {parts}, "
                f"rest of the machine {self.other:.2f}" + (f" (busiest: {busiest})" if busiest else ""))


class CpuMeter:
    """CPU time from /proc: the whole machine, this process ("bench client"), the process groups of our
    services, and the PostgreSQL backends of our database (exited processes' time is lost: small here)."""

    def __init__(self, groups: dict[str, int], database_url: str | None = None):
        self._roles_by_group = {pgid: role for role, pgid in groups.items()}
        self._connection = connect(database_url) if database_url else None
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._started, self._machine, self._processes = self._read()

    def _read(self) -> tuple[float, float, dict[int, tuple[str, float, bool]]]:
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
        machine = (user + nice + system + irq + softirq + steal) / self._ticks
        backends: set[int] = set()
        if self._connection is not None:
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                backends = {pid for (pid,) in cursor.fetchall()}
        processes = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    text = stat.read()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            pgrp, cpu = int(fields[2]), (int(fields[11]) + int(fields[12])) / self._ticks
            if pid == os.getpid():
                processes[pid] = ("bench client", cpu, True)
            elif pgrp in self._roles_by_group:
                processes[pid] = (self._roles_by_group[pgrp], cpu, True)
            elif pid in backends:
                processes[pid] = ("postgres (our db)", cpu, True)
            else:
                processes[pid] = (f"{text[text.index('(') + 1:text.rindex(')')]}[{pid}]", cpu, False)
        return time.perf_counter(), machine, processes

    def usage(self) -> CpuUsage:
        now, machine, processes = self._read()
        if self._connection is not None:
            self._connection.close()
        wall = now - self._started
        roles: Counter = Counter()
        others: Counter = Counter()
        for pid, (role, cpu, ours) in processes.items():
            before = self._processes.get(pid)
            used = cpu - (before[1] if before and before[0] == role else 0.0)
            (roles if ours else others)[role] += used
        return CpuUsage(wall, (machine - self._machine) / wall, {role: t / wall for role, t in roles.items()},
                        [(name, t / wall) for name, t in others.most_common(3)])


# --------------------------------------------------------------------------- setup and teardown


def create_database() -> tuple[str, str]:
    admin = connect(ADMIN_URL)
    name = f"tqs_ingest_bench_{uuid.uuid4().hex[:8]}"  # not matched by bench.pipeline's 'tqs_bench_%' cleanup
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    admin = connect(ADMIN_URL)
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    client.flushdb()
    client.close()


def service_env(database_url: str, queue_url: str, data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TQS_")}
    env.update(TQS_DATABASE_URL=database_url, TQS_QUEUE_URL=queue_url, TQS_API_KEYS=API_KEY,
               TQS_DATA_DIR=str(data_dir))
    return env


def wait_for(service: Service, condition: Callable[[], object], timeout: float, what: str) -> None:
    """Wait on ``condition``; fail at once with the log tail if the process died instead."""

    def ready() -> object:
        if service.process is not None and service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.log()[-3000:]}")
        return condition()

    wait_until(ready, timeout, what)


# --------------------------------------------------------------------------- ceilings


def insert_commit_ceiling(database_url: str, seconds: float, temporary: bool) -> float:
    """Single-row INSERT + COMMIT per second on one connection.

    A TEMP table writes no WAL, so its commits skip the WAL flush; an ordinary table pays the
    flush every committed scoring transaction pays. Both are measured; the ratio uses the latter.
    """
    connection = psycopg2.connect(database_url)
    table = "bench_commit_temp" if temporary else "bench_commit"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE {'TEMP ' if temporary else ''}TABLE {table} "
                       "(id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())")
        connection.commit()
        payload = json.dumps(history_sessions(1, 1)[0])
        count = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            cursor.execute(f"INSERT INTO {table} (payload) VALUES (%s)", (payload,))
            connection.commit()
            count += 1
        elapsed = time.perf_counter() - started
        cursor.execute(f"DROP TABLE {table}")
        connection.commit()
    connection.close()
    return count / elapsed


@dataclass
class HammerResult:
    requests_per_second: float
    sessions_per_second: float
    statuses: Counter
    connects: int
    cpu: CpuUsage | None = None


def hammer(port: int, bodies: list[bytes], batch: int, clients: int, seconds: float, label: str) -> HammerResult:
    """``clients`` threads POSTing ``bodies`` round robin for ``seconds``."""
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds

    def client(offset: int) -> None:
        poster = Poster(port)
        i = offset
        while time.perf_counter() < deadline:
            tally.add(poster.post(bodies[i % len(bodies)]), batch)
            i += clients
        with tally.lock:
            tally.connects += poster.connects
        poster.close()

    with ticking(lambda: f"{label}: {tally.requests} requests, "
                         f"{tally.requests / (time.perf_counter() - started):.0f}/s"):
        threads = [threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    return HammerResult(tally.accepted_requests / elapsed, tally.accepted_sessions / elapsed, tally.statuses,
                        tally.connects)


def bare_falcon_ceiling(env: dict[str, str], log_dir: Path, workers: int, bodies: list[bytes], batch: int,
                        clients: int, seconds: float) -> HammerResult:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "bench.bare_app:app", "--bind", f"127.0.0.1:{port}",
            *gunicorn_flags(workers)]
    service = Service("bare-falcon", argv, env, log_dir).start()
    try:
        wait_for(service, ApiClient(f"http://127.0.0.1:{port}", None).healthy, 30, "the bare Falcon app")
        meter = CpuMeter({"gunicorn": service.process.pid})
        result = hammer(port, bodies, batch, clients, seconds, "bare falcon")
        result.cpu = meter.usage()
        return result
    finally:
        service.stop()


# --------------------------------------------------------------------------- the two runs on the real services


def shifted_history(count: int, tutors: int) -> list[dict]:
    """bench.pipeline's 90-day history, moved so that it ends a minute ago (it ends at a fixed date)."""
    shift = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1) - PIPELINE_NOW
    records = history_sessions(count, tutors)
    for record in records:
        record["scheduled_time"] = (dt.datetime.fromisoformat(record["scheduled_time"]) + shift).isoformat()
    return records


@dataclass
class ThroughputResult:
    sessions: int
    requests: int
    accepted_seconds: float
    scored_seconds: float | None
    statuses: Counter
    connects: int
    checks: dict[str, object]
    ok: bool

    @property
    def accepted_per_second(self) -> float:
        return self.sessions / self.accepted_seconds

    @property
    def accepted_requests_per_second(self) -> float:
        return self.requests / self.accepted_seconds

    @property
    def scored_per_second(self) -> float | None:
        return None if self.scored_seconds is None else self.sessions / self.scored_seconds


def throughput_run(port: int, database_url: str, records: list[dict], batch: int, clients: int,
                   drain_timeout: float) -> ThroughputResult:
    bodies = [json.dumps(records[i:i + batch]).encode() for i in range(0, len(records), batch)]
    work: queue.SimpleQueue = queue.SimpleQueue()
    for body_index, body in enumerate(bodies):
        work.put((body_index, body))
    sizes = [len(records[i:i + batch]) for i in range(0, len(records), batch)]
    tally = Tally()
    monitor = connect(database_url)
    finished: list[float] = []  # when each client got its last answer
    started = time.perf_counter()

    def client() -> None:
        poster = Poster(port)
        while True:
            try:
                body_index, body = work.get_nowait()
            except queue.Empty:
                break
            tally.add(poster.post(body), sizes[body_index])
        with tally.lock:
            tally.connects += poster.connects
            finished.append(time.perf_counter())
        poster.close()

    ticker_connection = connect(database_url)  # the ticker thread gets its own connection

    def report() -> str:
        statuses = inbox_statuses(ticker_connection)
        elapsed = time.perf_counter() - started
        processed = statuses.get("processed", 0)
        return (f"throughput {elapsed:5.1f}s: accepted {tally.accepted_sessions}/{len(records)} sessions, "
                f"inbox pending {statuses.get('pending', 0)}, processed {processed} ({processed / elapsed:.0f}/s)")

    with ticking(report):
        threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
        for thread in threads:
            thread.start()
        accepted_at = scored_at = None
        deadline = None
        while True:
            posting = any(thread.is_alive() for thread in threads)
            if not posting and accepted_at is None:
                accepted_at = max(finished, default=time.perf_counter())
                deadline = time.perf_counter() + drain_timeout
            pending = scalar(monitor, "SELECT count(*) FROM inbox WHERE status = 'pending'")
            if not posting and pending == 0:
                scored_at = time.perf_counter()
                break
            if deadline is not None and time.perf_counter() > deadline:
                say(f"throughput: still {pending} pending {drain_timeout:.0f}s after the last POST; giving up")
                break
            time.sleep(0.1)
    ticker_connection.close()

    checks = verify(monitor, len(records))
    monitor.close()
    ok = tally.accepted_sessions == len(records) and scored_at is not None and bool(checks["ok"])
    return ThroughputResult(
        tally.accepted_sessions, tally.accepted_requests, accepted_at - started,
        None if scored_at is None else scored_at - started, tally.statuses, tally.connects, checks, ok,
    )


def verify(connection, expected: int) -> dict[str, object]:
    """Every session stored once and every inbox row processed: none failed, none superseded."""
    sessions = scalar(connection, "SELECT count(*) FROM sessions")
    distinct = scalar(connection, "SELECT count(DISTINCT session_id) FROM sessions")
    inbox_rows = scalar(connection, "SELECT count(*) FROM inbox")
    inbox_distinct = scalar(connection, "SELECT count(DISTINCT session_id) FROM inbox")
    statuses = inbox_statuses(connection)
    attempts = scalar(connection, "SELECT count(*) FROM inbox WHERE attempts > 0")
    ok = (sessions == distinct == expected and inbox_rows == inbox_distinct == expected
          and statuses.get("processed", 0) == expected and not statuses.get("failed") and attempts == 0)
    return {"ok": ok, "sessions": sessions, "distinct_sessions": distinct, "inbox_rows": inbox_rows,
            "inbox_distinct": inbox_distinct, "inbox_statuses": statuses, "rows_with_failed_attempts": attempts}


@dataclass
class LatencyResult:
    offered: int
    offered_rate: float
    answered: Counter
    scored: int
    to_processed: list[float]
    to_processed_from_schedule: list[float]
    post_seconds: list[float]
    send_lag: list[float]
    unscored: int
    poll_seconds: list[float]


def live_sessions(count: int, tutors: int, seed: int = 7) -> list[dict]:
    """Sessions of the last hour for random tutors (the tutors of the history run), like the Rails app sends."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    records = []
    for i in range(count):
        moved = rng.random() < 0.1
        record = {"session_id": f"live-{i}", "tutor_id": f"tutor-{rng.randrange(tutors):05d}",
                  "student_id": f"s{rng.randrange(5000)}",
                  "scheduled_time": (now - dt.timedelta(seconds=rng.uniform(60, 3600))).isoformat(),
                  "status": "rescheduled" if moved else "completed"}
        if moved:
            record["reschedule_info"] = {"initiator": "tutor", "reason": "personal"}
        records.append(record)
    return records


def latency_run(port: int, database_url: str, tutors: int, rate: float, seconds: float, senders: int,
                drain_timeout: float) -> LatencyResult:
    records = live_sessions(round(rate * seconds), tutors)
    jobs: queue.Queue = queue.Queue()
    lock = threading.Lock()
    posted_at: dict[str, float] = {}
    due_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    outstanding: set[str] = set()
    answered: Counter = Counter()
    post_seconds: list[float] = []
    send_lag: list[float] = []
    poll_seconds: list[float] = []
    stop_polling = threading.Event()

    def sender() -> None:
        poster = Poster(port)
        while (job := jobs.get()) is not None:
            session_id, due, body = job
            start = time.perf_counter()
            with lock:
                posted_at[session_id] = start
                due_at[session_id] = due
                outstanding.add(session_id)
                send_lag.append(start - due)
            status = poster.post(body)
            finished = time.perf_counter()
            with lock:
                answered[status] += 1
                post_seconds.append(finished - start)
                if status != 202:
                    outstanding.discard(session_id)
        poster.close()

    def poller() -> None:
        connection = connect(database_url)
        with connection.cursor() as cursor:
            while not stop_polling.is_set():
                with lock:
                    ids = list(outstanding)
                if ids:
                    began = time.perf_counter()
                    cursor.execute("SELECT session_id FROM inbox WHERE status = 'processed' AND session_id = ANY(%s)",
                                   (ids,))
                    rows = cursor.fetchall()
                    seen = time.perf_counter()
                    poll_seconds.append(seen - began)
                    with lock:
                        for (session_id,) in rows:
                            if session_id in outstanding:
                                outstanding.discard(session_id)
                                seen_at[session_id] = seen
                stop_polling.wait(0.02)
        connection.close()

    started = time.perf_counter()

    def report() -> str:
        with lock:
            sent, scored, waiting = len(posted_at), len(seen_at), len(outstanding)
            lag = max(send_lag, default=0.0)
        return (f"latency {time.perf_counter() - started:5.1f}s: offered {sent}/{len(records)}, "
                f"answered {sum(answered.values())}, scored {scored}, outstanding {waiting}, "
                f"worst send lag {1000 * lag:.0f} ms")

    threads = [threading.Thread(target=sender, name=f"sender-{n}") for n in range(senders)]
    polling = threading.Thread(target=poller, name="poller")
    with ticking(report):
        polling.start()
        for thread in threads:
            thread.start()
        origin = time.perf_counter() + 0.05
        for i, record in enumerate(records):
            due = origin + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            jobs.put((record["session_id"], due, json.dumps(record).encode()))
        for _ in threads:
            jobs.put(None)
        for thread in threads:
            thread.join()
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not outstanding, drain_timeout, "the offered sessions to be scored", interval=0.05)
        stop_polling.set()
        polling.join()

    starts = sorted(posted_at.values())
    offered_rate = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    latencies = [seen_at[s] - posted_at[s] for s in seen_at]
    from_schedule = [seen_at[s] - due_at[s] for s in seen_at]
    return LatencyResult(len(records), offered_rate, answered, len(seen_at), latencies, from_schedule, post_seconds,
                         send_lag, len(outstanding), poll_seconds)


# --------------------------------------------------------------------------- logs


SCORED = re.compile(r"event=session_scored session_id=(\S+) .*?attempt=(\d+) ms=([\d.]+)")
EVENT = re.compile(r"event=(\S+)")
SUSPICIOUS = re.compile(r"level=(ERROR|WARNING|CRITICAL)|Traceback|\[(ERROR|CRITICAL)\]|WORKER TIMEOUT|"
                        r"event=(session_failed|session_attempt_failed|enqueue_failed|sweep_failed|inbox_swept)")
HTTP_STATUS = re.compile(r"event=http_request method=(\S+) path=(\S+) status=(\d+)")


def read_logs(api: Service, worker: Service) -> dict[str, object]:
    worker_log, api_log = worker.log(), api.log()
    scored = Counter()
    retried = 0
    ms_history, ms_live = [], []
    for session_id, attempt, ms in SCORED.findall(worker_log):
        scored[session_id] += 1
        retried += attempt != "1"
        (ms_live if session_id.startswith("live-") else ms_history).append(float(ms))
    events = Counter(EVENT.findall(worker_log))
    http = Counter(f"{method} {path} {status}" for method, path, status in HTTP_STATUS.findall(api_log))
    suspicious = [line for log in (api_log, worker_log) for line in log.splitlines() if SUSPICIOUS.search(line)]
    return {
        "scored_lines": sum(scored.values()), "scored_sessions": len(scored),
        "scored_twice": sum(1 for n in scored.values() if n > 1), "retried": retried,
        "worker_events": events, "http": http, "suspicious": suspicious,
        "ms_history": statistics.fmean(ms_history) if ms_history else None,
        "ms_live": statistics.fmean(ms_live) if ms_live else None,
    }


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000, help="sessions in the throughput run")
    parser.add_argument("--tutors", type=int, default=80)
    parser.add_argument("--batch", type=int, default=500, help="sessions per POST in the throughput run")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--api-workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn workers")
    parser.add_argument("--queue-workers", type=int, default=os.cpu_count() or 1, help="tqs worker processes")
    parser.add_argument("--rate", type=float, default=100.0, help="sessions offered per second in the latency run")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=4, help="sender threads in the latency run")
    parser.add_argument("--bare-seconds", type=float, default=10.0, help="length of the bare Falcon ceiling run")
    parser.add_argument("--insert-seconds", type=float, default=5.0, help="length of the INSERT+COMMIT ceiling")
    parser.add_argument("--drain-timeout", type=float, default=150.0,
                        help="give up on scoring this many seconds after the last POST")
    parser.add_argument("--redis-db", type=int, default=9, help="Redis DB number, flushed at start and end")
    parser.add_argument("--skip", action="append", default=[], choices=["ceilings", "throughput", "latency"])
    args = parser.parse_args()

    work_dir = Path(tempfile.mkdtemp(prefix="tqs-ingest-bench-"))
    queue_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    try:
        flush_redis(queue_url)
    except redis.RedisError as exc:
        print(f"bench.ingest: Redis at {queue_url} not reachable ({exc}); run `make services`", file=sys.stderr)
        return 2
    try:
        db_name, database_url = create_database()
    except psycopg2.OperationalError as exc:
        print(f"bench.ingest: PostgreSQL not reachable ({exc}); run `make services`", file=sys.stderr)
        return 2
    env = service_env(database_url, queue_url, work_dir / "data")
    say(f"database {db_name}, queue {queue_url}, logs in {work_dir}")
    records = shifted_history(args.sessions, args.tutors)
    bodies = [json.dumps(records[i:i + args.batch]).encode() for i in range(0, len(records), args.batch)]

    figures: dict[str, object] = {}
    api = worker = None
    try:
        if "ceilings" not in args.skip:
            say(f"ceiling: INSERT+COMMIT on one connection, {args.insert_seconds:g}s each (ordinary and TEMP table)")
            figures["insert"] = insert_commit_ceiling(database_url, args.insert_seconds, temporary=False)
            figures["insert_temp"] = insert_commit_ceiling(database_url, args.insert_seconds, temporary=True)
            say(f"ceiling: bare Falcon, {args.api_workers} sync workers, {args.clients} clients, "
                f"{args.bare_seconds:g}s")
            figures["bare"] = bare_falcon_ceiling(env, work_dir, args.api_workers, bodies, args.batch, args.clients,
                                                  args.bare_seconds)

        port = free_port()
        api = Service("api", tqs_argv("api", "--bind", f"127.0.0.1:{port}", "--workers", str(args.api_workers)),
                      env, work_dir).start()
        wait_for(api, ApiClient(f"http://127.0.0.1:{port}", None).healthy, 60, "the API's health endpoint")
        worker = Service("worker", tqs_argv("worker", "--workers", str(args.queue_workers)), env, work_dir).start()
        wait_for(worker, lambda: "event=worker_started" in worker.log(), 60, "the worker to start")
        say(f"api on port {port} ({args.api_workers} workers) and worker ({args.queue_workers} processes) are up")

        groups = {"api": api.process.pid, "worker": worker.process.pid}
        if "throughput" not in args.skip:
            say(f"throughput: {len(records)} sessions in {len(bodies)} POSTs of {args.batch}, {args.clients} clients")
            meter = CpuMeter(groups, database_url)
            figures["throughput"] = throughput_run(port, database_url, records, args.batch, args.clients,
                                                   args.drain_timeout)
            figures["throughput_cpu"] = meter.usage()
        if "latency" not in args.skip:
            say(f"latency: {args.rate:g} sessions/s offered for {args.latency_seconds:g}s, {args.senders} senders")
            meter = CpuMeter(groups, database_url)
            figures["latency"] = latency_run(port, database_url, args.tutors, args.rate, args.latency_seconds,
                                             args.senders, min(args.drain_timeout, LATENCY_DRAIN_SECONDS))
            figures["latency_cpu"] = meter.usage()
            if "throughput" not in args.skip:
                monitor = connect(database_url)
                figures["final_checks"] = verify(monitor, len(records) + figures["latency"].offered)
                monitor.close()
    finally:
        for service in (worker, api):
            if service is not None:
                service.stop()  # SIGTERM to the process group, SIGKILL if it lingers
        with contextlib.suppress(redis.RedisError):
            flush_redis(queue_url)
        drop_database(db_name)

    logs = read_logs(api, worker) if api and worker else None
    print_summary(args, figures, logs, work_dir)
    failed = [name for name in ("throughput",) if name in figures and not figures[name].ok]
    checks = figures.get("final_checks")
    return 1 if failed or (checks is not None and not checks["ok"]) else 0


def add_cpu(add: Callable[[str], None], cpu: CpuUsage | None, sessions: int) -> None:
    if cpu is None:
        return
    add(f"  CPU {cpu.describe()}")
    per_session = ", ".join(f"{role} {1000 * cores * cpu.wall / sessions:.2f}" for role, cores in
                            sorted(cpu.roles.items(), key=lambda r: -r[1]))
    add(f"  CPU ms per session: {per_session}")


def print_summary(args: argparse.Namespace, figures: dict, logs: dict | None, work_dir: Path) -> None:
    out: list[str] = []
    add = out.append
    add("")
    add(f"== bench.ingest on this machine ({os.cpu_count()} cores): gunicorn {args.api_workers} sync workers, "
        f"tqs worker {args.queue_workers} processes, PostgreSQL + Redis db {args.redis_db} ==")
    bare: HammerResult | None = figures.get("bare")
    insert = figures.get("insert")
    result: ThroughputResult | None = figures.get("throughput")
    if result is not None:
        add(f"throughput: {args.sessions} sessions, {args.tutors} tutors over 90 days, POSTs of {args.batch}, "
            f"{args.clients} clients")
        add(f"  accepted (202)          {result.accepted_per_second:8.0f} sessions/s   "
            f"({result.accepted_requests_per_second:.1f} requests/s; all answered after {result.accepted_seconds:.1f}s;"
            f" statuses {dict(result.statuses)}; {result.connects} TCP connections)")
        if result.scored_per_second is None:
            add(f"  scored end to end       not finished: inbox still pending {args.drain_timeout:g}s after the "
                "last POST")
        else:
            verdict = "meets" if result.scored_per_second >= 500 else "BELOW"
            add(f"  scored end to end       {result.scored_per_second:8.0f} sessions/s   "
                f"(inbox empty after {result.scored_seconds:.1f}s; {verdict} the >= 500/s target)")
        checks = result.checks
        add(f"  check {'ok' if checks['ok'] else 'FAILED'}: sessions rows {checks['sessions']} "
            f"({checks['distinct_sessions']} distinct) of {args.sessions}; inbox rows {checks['inbox_rows']} "
            f"({checks['inbox_distinct']} distinct), by status {checks['inbox_statuses']}, "
            f"rows with a failed attempt {checks['rows_with_failed_attempts']}")
        add_cpu(add, figures.get("throughput_cpu"), args.sessions)
    latency: LatencyResult | None = figures.get("latency")
    if latency is not None:
        add(f"latency: {args.rate:g} sessions/s offered for {args.latency_seconds:g}s, one session per POST, "
            f"{args.senders} sender threads; achieved {latency.offered_rate:.1f}/s")
        if latency.to_processed:
            p50, p99 = percentile(latency.to_processed, 0.50), percentile(latency.to_processed, 0.99)
            verdict = "meets" if p99 < 1.0 and not latency.unscored else "MISSES"
            add(f"  POST start -> processed p50 {1000 * p50:6.0f} ms   p99 {1000 * p99:6.0f} ms   "
                f"max {1000 * max(latency.to_processed):.0f} ms  ({verdict} the p99 < 1 s target; "
                f"{latency.scored}/{latency.offered} scored, {latency.unscored} never seen)")
            add(f"  from intended send time p50 {1000 * percentile(latency.to_processed_from_schedule, 0.5):6.0f} ms"
                f"   p99 {1000 * percentile(latency.to_processed_from_schedule, 0.99):6.0f} ms   "
                f"(includes sender lag: p99 {1000 * percentile(latency.send_lag, 0.99):.0f} ms)")
        else:
            add(f"  nothing was scored: {latency.unscored} never seen")
        add(f"  POST answered (202)     p50 {1000 * percentile(latency.post_seconds, 0.5):6.0f} ms   "
            f"p99 {1000 * percentile(latency.post_seconds, 0.99):6.0f} ms   statuses {dict(latency.answered)}")
        if latency.poll_seconds:
            add(f"  (visibility polled every 20 ms; one poll query took p50 "
                f"{1000 * percentile(latency.poll_seconds, 0.5):.1f} ms, p99 "
                f"{1000 * percentile(latency.poll_seconds, 0.99):.1f} ms)")
        add_cpu(add, figures.get("latency_cpu"), latency.offered)
    if bare is not None or insert is not None:
        add("ceilings, same run, same machine:")
    if bare is not None:
        add(f"  bare Falcon, same gunicorn   {bare.requests_per_second:8.1f} requests/s = "
            f"{bare.sessions_per_second:.0f} sessions/s at {args.batch} per POST "
            f"({args.bare_seconds:g}s, {args.clients} clients, statuses {dict(bare.statuses)})")
        if bare.cpu is not None:
            add(f"    CPU {bare.cpu.describe()}")
    if insert is not None:
        add(f"  INSERT+COMMIT, 1 connection  {insert:8.0f} per second (ordinary table, WAL flushed per commit; "
            f"TEMP table, no WAL flush: {figures['insert_temp']:.0f}/s)")
    if result is not None and (bare is not None or insert is not None):
        add("ours as a share of the ceiling:")
        if bare is not None:
            ours, ceiling = result.accepted_requests_per_second, bare.requests_per_second
            add(f"  accepted requests/s / bare Falcon requests/s    {ours:.1f} / {ceiling:.1f} = {ours / ceiling:.1%}")
        if insert is not None and result.scored_per_second is not None:
            add(f"  scored sessions/s / INSERT+COMMIT per second    {result.scored_per_second:.0f} / {insert:.0f} = "
                f"{result.scored_per_second / insert:.1%}")
    final = figures.get("final_checks")
    if final is not None:
        add(f"after both runs: check {'ok' if final['ok'] else 'FAILED'}: sessions {final['sessions']}, "
            f"inbox by status {final['inbox_statuses']}, "
            f"rows with a failed attempt {final['rows_with_failed_attempts']}")
    noisy = [(name, cpu.other) for name, cpu in (("throughput", figures.get("throughput_cpu")),
                                                 ("latency", figures.get("latency_cpu")),
                                                 ("bare Falcon", getattr(bare, "cpu", None))) if cpu is not None]
    noisy = [(name, other) for name, other in noisy if other > NOISE_CORES]
    if noisy:
        shares = ", ".join(f"{name}: {other:.2f} cores" for name, other in noisy)
        add(f"WARNING: other load shared the machine ({shares}); those figures are lower than this code "
            "achieves on a quiet machine: rerun to compare")
    if logs is not None:
        ms = "/".join("-" if v is None else f"{v:.1f}" for v in (logs["ms_history"], logs["ms_live"]))
        add(f"logs ({work_dir}): session_scored lines {logs['scored_lines']} for {logs['scored_sessions']} sessions, "
            f"{logs['scored_twice']} scored more than once, {logs['retried']} on a retry; worker ms per session "
            f"(history/live) {ms}")
        add(f"  worker events {dict(logs['worker_events'])}")
        add(f"  API requests {dict(logs['http'])}")
        suspicious = logs["suspicious"]
        add(f"  suspicious lines: {len(suspicious)}" + (":" if suspicious else ""))
        out.extend(f"    {line[:300]}" for line in suspicious[:15])
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
