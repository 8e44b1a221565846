"""The closing table every scale benchmark prints: each figure beside its target, met or not met."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass

from bench.ingest.figures import percentile
from engine.terminal import print_table


@dataclass(frozen=True)
class Verdict:
    """A figure beside its target; a ``check`` (nothing lost, every request answered) is about correctness."""

    figure: str
    measured: str
    target: str
    met: bool | None  # None: reported, no target
    check: bool = False

    @property
    def word(self) -> str:
        return "-" if self.met is None else ("met" if self.met else "NOT MET")


def print_verdicts(title: str, verdicts: list[Verdict], strict: bool = False) -> int:
    """Print the table; the exit status: 1 when a check failed, or (``strict``) a target was not met."""
    print(f"\n{title}")
    print_table([("figure", "left"), ("measured", "right"), ("target", "left"), ("verdict", "left")],
                [[v.figure, v.measured, v.target, v.word] for v in verdicts])
    missed = [v for v in verdicts if v.met is False and (v.check or strict)]
    return 1 if missed else 0


def add_strict(parser) -> None:
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met (a failed check "
                                                               "always exits 1)")


def spread_ms(seconds: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    ms = [1000 * s for s in seconds]
    return (statistics.median(ms) if ms else float("nan"), percentile(ms, 0.95), percentile(ms, 0.99))


class Progress:
    """Plain progress lines on stderr, at most one per ``every`` seconds per topic (readable in a log too)."""

    def __init__(self, prefix: str, every: float = 5.0):
        self.prefix, self.every = prefix, every
        self._last: dict[str, float] = {}
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{self.prefix} {time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def tick(self, topic: str, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last.get(topic, 0.0) >= self.every:
            self._last[topic] = now
            self.say(message)
