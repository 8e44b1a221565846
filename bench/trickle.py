"""Live single-session POSTs at a steady rate, each timed from its POST to its score counting it.

A session counts as visible once its tutor was rescored after the session was stored and no rescore
covering it still waits (the same test as :mod:`bench.ingest`'s live run): from then on
``GET /api/tutors/{id}`` includes it. The poller asks PostgreSQL at most every ``POLL_SECONDS``, one
indexed query for every session still outstanding, so it is not the load. Each sample is tagged with
the phase it was posted in (``load`` while the backfill is being scored, ``idle`` after).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.client import post_sessions

POLL_SECONDS = 0.1
VISIBLE = (
    "SELECT s.session_id FROM sessions s JOIN tutors t ON t.tutor_id = s.tutor_id "
    "LEFT JOIN rescore_waiting w ON w.tutor_id = s.tutor_id AND w.waiting_since <= s.updated_at "
    "WHERE s.session_id = ANY(%s) AND t.scored_at >= s.updated_at AND w.tutor_id IS NULL"
)


@dataclass
class TrickleFigures:
    visible: dict[str, list[float]] = field(default_factory=lambda: {"load": [], "idle": []})  # seconds
    statuses: Counter = field(default_factory=Counter)
    posted: Counter = field(default_factory=Counter)  # by phase
    never_visible: int = 0


class Trickle:
    """Posts ``make_session(moment)`` every ``1 / rate`` seconds from one thread; a second thread polls."""

    def __init__(self, port: int, connect: Callable[[], Any], rate: float,
                 make_session: Callable[[dt.datetime], dict[str, Any]]):
        self.port, self.connect, self.rate, self.make_session = port, connect, rate, make_session
        self.figures = TrickleFigures()
        self.phase = "load"
        self._lock = threading.Lock()
        self._outstanding: dict[str, tuple[float, str]] = {}  # session id -> (posted at, phase)
        self._stop_posting = threading.Event()
        self._stop_polling = threading.Event()
        self._threads = [threading.Thread(target=self._post, name="trickle-post", daemon=True),
                         threading.Thread(target=self._poll, name="trickle-poll", daemon=True)]

    def start(self) -> Trickle:
        for thread in self._threads:
            thread.start()
        return self

    @property
    def outstanding(self) -> int:
        with self._lock:
            return len(self._outstanding)

    def _post(self) -> None:
        origin, index = time.perf_counter(), 0
        while not self._stop_posting.is_set():
            pause = origin + index / self.rate - time.perf_counter()
            if pause > 0 and self._stop_posting.wait(pause):
                break
            index += 1
            session = self.make_session(dt.datetime.now(dt.UTC))
            body = json.dumps(session).encode()
            posted_at, phase = time.perf_counter(), self.phase
            with self._lock:
                self._outstanding[session["session_id"]] = (posted_at, phase)
            status, _ = post_sessions(self.port, body)
            with self._lock:
                self.figures.statuses[status] += 1
                self.figures.posted[phase] += 1
                if status != 202:
                    self._outstanding.pop(session["session_id"], None)

    def _poll(self) -> None:
        connection = self.connect()
        with connection.cursor() as cursor:
            while not self._stop_polling.wait(POLL_SECONDS):
                with self._lock:
                    ids = list(self._outstanding)
                if not ids:
                    continue
                cursor.execute(VISIBLE, (ids,))
                seen = time.perf_counter()
                with self._lock:
                    for (session_id,) in cursor.fetchall():
                        posted_at, phase = self._outstanding.pop(session_id, (None, ""))
                        if posted_at is not None:
                            self.figures.visible[phase].append(seen - posted_at)
        connection.close()

    def stop(self, drain_seconds: float = 60) -> TrickleFigures:
        """Stop posting, wait up to ``drain_seconds`` for the last sessions to become visible, stop polling."""
        self._stop_posting.set()
        self._threads[0].join()
        deadline = time.monotonic() + drain_seconds
        while self.outstanding and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        self._stop_polling.set()
        self._threads[1].join()
        self.figures.never_visible = self.outstanding
        return self.figures
