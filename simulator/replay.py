"""Replay generated sessions in time order: over HTTP exactly as Rails would, or straight into the pipeline.

Both paths validate with the same function and score with the same pipeline, so they give
the same scores and history.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.ingest import IngestReport, ingest
from engine.services import Services, utc_now
from engine.terminal import ProgressHook, progress_bars
from simulator.generate import Simulation

BATCH = 500


class ApiError(RuntimeError):
    """The API refused or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


@dataclass(frozen=True)
class ApiTarget:
    url: str
    api_key: str

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise ApiError(f"{method} {path}: HTTP {error.code}: {error.read()[:500].decode(errors='replace')}",
                           error.code, _seconds(error.headers.get("Retry-After"))) from None
        except (urllib.error.URLError, OSError) as error:
            raise ApiError(f"{method} {path}: cannot reach {self.url}: {error}") from None

    def post_sessions(self, sessions: Sequence[dict[str, Any]], attempts: int = 8) -> None:
        """POST one batch; on 429 (over the key's rate) or 503 (database briefly away) wait as Retry-After
        says (or back off) and try again, as Rails would."""
        for attempt in range(attempts):
            try:
                self.request("POST", "/api/sessions", list(sessions))
                return
            except ApiError as error:
                if error.status not in (429, 503) or attempt == attempts - 1:
                    raise
                time.sleep(min(error.retry_after or 2 ** attempt, 60))


def _seconds(retry_after: str | None) -> float | None:
    try:
        return float(retry_after) if retry_after else None
    except ValueError:  # an HTTP date: back off instead
        return None


def replay_direct(services: Services, sessions: Sequence[dict[str, Any]], batch: int = BATCH) -> IngestReport:
    """Feed the pipeline in-process, batch by batch, in time order; then rescore each tutor touched once."""
    with progress_bars() as progress:
        return ingest(services, sessions, batch, progress=progress)


def replay_api(target: ApiTarget, sessions: Sequence[dict[str, Any]], batch: int = BATCH) -> None:
    """POST in time order, a batch at a time, then wait until the workers have scored everything."""
    with progress_bars() as progress:
        for start in range(0, len(sessions), batch):
            chunk = sessions[start:start + batch]
            target.post_sessions(chunk)
            progress("post", start + len(chunk), len(sessions))
        wait_for_scoring(target, len(sessions), progress)


def wait_for_scoring(target: ApiTarget, total: int, progress: ProgressHook, timeout: float = 3600) -> None:
    """Poll /api/health until no session waits to be stored and no tutor waits to be rescored."""
    deadline = time.monotonic() + timeout
    while True:
        backlog = target.request("GET", "/api/health").get("backlog") or {}
        pending = backlog.get("pending", 0)
        waiting = (backlog.get("rescore") or {}).get("tutors_waiting", 0)
        progress("store", max(0, total - pending), total)
        if pending == 0 and waiting == 0:
            break
        if time.monotonic() > deadline:
            raise ApiError(f"{pending} sessions and {waiting} tutors still waiting after {timeout:.0f}s")
        time.sleep(0.25)


def live_feed(simulation: Simulation, post: Callable[[list[dict[str, Any]]], None], rate_per_minute: float,
              stop: threading.Event, clock: Callable[[], dt.datetime] = utc_now, seed: int = 0) -> int:
    """Keep posting sessions that just finished, ``rate_per_minute`` on average, until ``stop`` is set."""
    rng = random.Random(seed)
    factory = simulation.factory
    active = [t for t in simulation.tutors if t.start_date <= simulation.last_day]
    weights = [t.load for t in active]
    posted = 0
    while not stop.wait(rng.expovariate(rate_per_minute / 60.0)):
        tutor = rng.choices(active, weights)[0]
        finished_by_now = dt.timedelta(minutes=95)  # longer than any session, so it has ended
        session = factory.make(tutor, (clock() - finished_by_now).replace(microsecond=0))
        post([session])
        posted += 1
    return posted


def summarize(sessions: Sequence[dict[str, Any]], flagged: int, tutors: int) -> str:
    by_status: dict[str, int] = {}
    for session in sessions:
        by_status[session["status"]] = by_status.get(session["status"], 0) + 1
    moved = [s for s in sessions if s["status"] == "rescheduled"]
    by_tutor = sum(1 for s in moved if s["reschedule_info"]["initiator"] == "tutor")
    share = f"{100 * by_tutor / len(moved):.1f}%" if moved else "-"
    parts = ", ".join(f"{status} {count}" for status, count in sorted(by_status.items()))
    return (f"{len(sessions)} sessions ({parts}); tutor-initiated reschedules {share}; "
            f"{flagged} of {tutors} tutors flagged")
