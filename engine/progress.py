"""Progress for long-running commands: a live bar on a terminal, a line every few seconds in logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Call ``update(done)``; shows count, rate and ETA, and a closing line from ``finish()``."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, interval: float = 2.0):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval = 0.1 if self.live else interval
        self.started = self._last = time.monotonic()
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last >= self.interval or done >= self.total:
            self._last = now
            self._show(final=False)

    def finish(self) -> None:
        self._show(final=True)

    def _show(self, final: bool) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        if final:
            line = f"{self.label}: {self.done}/{self.total} in {elapsed:.1f}s ({rate:.0f}/s)"
        else:
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            line = (f"{self.label}: [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                    f"{rate:.0f}/s ETA {eta:.0f}s")
        if self.live:
            self.stream.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
