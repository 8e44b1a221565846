"""The measurements: the commit ceiling, a throughput run for one shape, the live run."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections import Counter

from bench.ingest.cpu import connect
from bench.ingest.figures import LatencyFigures, Shape, ThroughputFigures
from engine.terminal import progress_bars

API_KEY = "benchkey"
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
POLL_SECONDS = 0.05  # the visibility poller never asks faster than this, so it is not the load


class Poster:
    """One HTTP/1.1 connection per client thread (gunicorn's sync workers close it after each response)."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, body: bytes) -> int | str:
        """The HTTP status, or the exception's name when the request failed on the wire."""
        try:
            self.connection.request("POST", "/api/sessions", body=body, headers=HEADERS)
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            self.connection.close()
            return type(exc).__name__

    def close(self) -> None:
        self.connection.close()


def commit_ceiling(database_url: str, seconds: float) -> float:
    """Single-row INSERT + COMMIT per second on one connection, WAL flushed per commit like ours."""
    connection = connect(database_url)
    connection.autocommit = False
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_commit (id bigserial PRIMARY KEY, payload text NOT NULL)")
        connection.commit()
        payload = json.dumps({"session_id": "x" * 16, "tutor_id": "t" * 16, "status": "completed"})
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            cursor.execute("INSERT INTO bench_commit (payload) VALUES (%s)", (payload,))
            connection.commit()
            count += 1
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_commit")
        connection.commit()
    connection.close()
    return count / elapsed


def _backlog(cursor) -> tuple[int, int]:
    cursor.execute("SELECT (SELECT count(*) FROM inbox WHERE status = 'pending'), (SELECT count(*) FROM "
                   "rescore_waiting)")
    return cursor.fetchone()


def throughput_run(port: int, database_url: str, shape: Shape, records: list[dict], clients: int,
                   drain_timeout: float) -> ThroughputFigures:
    """POST ``records`` in batches from ``clients`` threads; time until nothing waits to be stored or rescored."""
    bodies: queue.SimpleQueue = queue.SimpleQueue()
    for start in range(0, len(records), shape.per_post):
        bodies.put((json.dumps(records[start:start + shape.per_post]).encode(),
                    len(records[start:start + shape.per_post])))
    statuses: Counter = Counter()
    accepted = [0]
    lock = threading.Lock()
    monitor = connect(database_url)
    cursor = monitor.cursor()
    cursor.execute("SELECT count(*) FROM inbox")
    before = cursor.fetchone()[0]
    started = time.perf_counter()

    def client() -> None:
        poster = Poster(port)
        while True:
            try:
                body, size = bodies.get_nowait()
            except queue.Empty:
                break
            status = poster.post(body)
            with lock:
                statuses[status] += 1
                accepted[0] += size if status == 202 else 0
        poster.close()

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    accepted_at = scored_at = None
    with progress_bars() as progress:
        while True:
            posting = any(thread.is_alive() for thread in threads)
            if not posting and accepted_at is None:
                accepted_at = time.perf_counter()
            pending, waiting = _backlog(cursor)
            cursor.execute("SELECT count(*) FROM inbox WHERE status = 'processed'")
            progress(f"{shape.name} stored", max(0, cursor.fetchone()[0] - before), len(records))
            if not posting and pending == 0 and waiting == 0:
                scored_at = time.perf_counter()
                break
            if accepted_at is not None and time.perf_counter() - accepted_at > drain_timeout:
                break
            time.sleep(0.1)
    checks_ok, checks = _verify(cursor, shape, len(records))
    monitor.close()
    return ThroughputFigures(shape, accepted_at - started, None if scored_at is None else scored_at - started,
                             statuses, 0, checks_ok and accepted[0] == len(records), checks)


def _verify(cursor, shape: Shape, expected: int) -> tuple[bool, str]:
    """Every session of the shape stored once and counted once in the daily counts; every inbox row processed."""
    prefix = f"{shape.name}-%"
    cursor.execute("SELECT count(*), count(DISTINCT session_id) FROM sessions WHERE session_id LIKE %s", (prefix,))
    stored, distinct = cursor.fetchone()
    cursor.execute("SELECT coalesce(sum(sessions), 0) FROM tutor_daily_counts WHERE tutor_id LIKE %s", (prefix,))
    counted = cursor.fetchone()[0]
    cursor.execute("SELECT status, count(*) FROM inbox WHERE session_id LIKE %s GROUP BY status", (prefix,))
    statuses = dict(cursor.fetchall())
    ok = stored == distinct == counted == expected and statuses == {"processed": expected}
    return ok, f"stored {stored} ({distinct} distinct), counted {counted}, inbox {statuses}"


def live_run(port: int, database_url: str, records: list[dict], rate: float, senders: int,
             drain_timeout: float) -> LatencyFigures:
    """Offer single-session POSTs at ``rate`` per second; time each until its tutor's score counts it."""
    jobs: queue.Queue = queue.Queue()
    lock = threading.Lock()
    posted_at: dict[str, float] = {}
    outstanding: set[str] = set()
    figures = LatencyFigures(len(records), 0.0, sum(r["tutor_id"].startswith("live-new") for r in records),
                             Counter())
    stop_polling = threading.Event()

    def sender() -> None:
        poster = Poster(port)
        while (job := jobs.get()) is not None:
            session_id, body = job
            start = time.perf_counter()
            with lock:
                posted_at[session_id] = start
                outstanding.add(session_id)
            status = poster.post(body)
            with lock:
                figures.statuses[status] += 1
                figures.post_seconds.append(time.perf_counter() - start)
                if status != 202:
                    outstanding.discard(session_id)
        poster.close()

    def poller() -> None:
        # Visible: the tutor was rescored after the session was stored, and no rescore covering it still waits.
        connection = connect(database_url)
        with connection.cursor() as cursor:
            while not stop_polling.wait(POLL_SECONDS):
                with lock:
                    ids = list(outstanding)
                if not ids:
                    continue
                cursor.execute(
                    "SELECT s.session_id FROM sessions s JOIN tutors t ON t.tutor_id = s.tutor_id "
                    "LEFT JOIN rescore_waiting w ON w.tutor_id = s.tutor_id AND w.waiting_since <= s.updated_at "
                    "WHERE s.session_id = ANY(%s) AND t.scored_at >= s.updated_at AND w.tutor_id IS NULL", (ids,))
                seen = time.perf_counter()
                with lock:
                    for (session_id,) in cursor.fetchall():
                        if session_id in outstanding:
                            outstanding.discard(session_id)
                            figures.visible.append(seen - posted_at[session_id])
        connection.close()

    threads = [threading.Thread(target=sender, name=f"sender-{n}") for n in range(senders)]
    polling = threading.Thread(target=poller, name="poller")
    polling.start()
    for thread in threads:
        thread.start()
    origin = time.perf_counter() + 0.05
    with progress_bars() as progress:
        for i, record in enumerate(records):
            pause = origin + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            jobs.put((record["session_id"], json.dumps(record).encode()))
            if i % 50 == 0:
                progress("live posts", i, len(records))
        for _ in threads:
            jobs.put(None)
        for thread in threads:
            thread.join()
        deadline = time.perf_counter() + drain_timeout
        while outstanding and time.perf_counter() < deadline:
            time.sleep(0.1)
    stop_polling.set()
    polling.join()
    starts = sorted(posted_at.values())
    figures.offered_rate = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    figures.never_visible = len(outstanding)
    return figures
