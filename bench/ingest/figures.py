"""The figures a run produces, typed, so the summary cannot misspell them."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from bench.ingest.cpu import CpuUsage


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


@dataclass
class Shape:
    """How a client sends: this many sessions of this many tutors over this many days, so many per POST."""

    name: str
    sessions: int
    tutors: int
    days: int
    per_post: int
    shuffled: bool

    @property
    def label(self) -> str:
        order = "shuffled" if self.shuffled else "time order"
        return f"{self.tutors} tutors, {self.per_post}/POST, {order}"


@dataclass
class ThroughputFigures:
    shape: Shape
    accepted_seconds: float
    scored_seconds: float | None
    statuses: Counter
    rescores: int
    checks_ok: bool
    checks: str
    cpu: CpuUsage | None = None

    @property
    def scored_per_second(self) -> float | None:
        return None if self.scored_seconds is None else self.shape.sessions / self.scored_seconds

    @property
    def accepted_per_second(self) -> float:
        return self.shape.sessions / self.accepted_seconds


@dataclass
class LatencyFigures:
    offered: int
    offered_rate: float
    new_tutors: int
    statuses: Counter
    visible: list[float] = field(default_factory=list)  # seconds from POST start to the score counting it
    post_seconds: list[float] = field(default_factory=list)
    never_visible: int = 0
    cpu: CpuUsage | None = None

    @property
    def worst(self) -> float:
        return max(self.visible, default=float("nan"))

    def summary(self) -> str:
        if not self.visible:
            return "nothing became visible"
        return (f"p50 {1000 * statistics.median(self.visible):.0f} ms, p99 {1000 * percentile(self.visible, 0.99):.0f}"
                f" ms, worst {1000 * self.worst:.0f} ms")


@dataclass
class RunFigures:
    """Everything one ``python -m bench.ingest`` measured."""

    commit_ceiling: float | None = None
    throughput: list[ThroughputFigures] = field(default_factory=list)
    live: LatencyFigures | None = None
