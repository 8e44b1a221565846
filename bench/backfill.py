"""A Rails-style backfill: sessions in time order, in batches, POSTed by a few concurrent jobs.

Each job takes the next batch, POSTs it, and retries after ``Retry-After`` on 429/503 (as
``docs/rails.md``'s client does), so the backfill goes as fast as the API accepts it.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from typing import Any

from bench.client import post_sessions


class Backfill:
    """The sessions cut into JSON bodies up front; ``start`` sets ``clients`` threads posting them in order."""

    def __init__(self, port: int, sessions: list[dict[str, Any]], batch: int, clients: int):
        self.port, self.total = port, len(sessions)
        self._batches: queue.SimpleQueue = queue.SimpleQueue()
        for start in range(0, len(sessions), batch):
            chunk = sessions[start:start + batch]
            self._batches.put((json.dumps(chunk).encode(), len(chunk)))
        self.accepted = 0
        self.statuses: Counter = Counter()
        self.retries = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._job, name=f"backfill-{n}", daemon=True) for n in range(clients)]

    def start(self) -> Backfill:
        for thread in self._threads:
            thread.start()
        return self

    @property
    def posting(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _job(self) -> None:
        while True:
            try:
                body, size = self._batches.get_nowait()
            except queue.Empty:
                break
            status, attempts = post_sessions(self.port, body)
            with self._lock:
                self.statuses[status] += 1
                self.retries += attempts - 1
                self.accepted += size if status == 202 else 0
