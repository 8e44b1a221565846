"""What a rule returns, and small helpers rule authors share (rates, Wilson intervals).

Rule plugins import from here and from :mod:`engine.windows`; nothing else in the
engine is part of the plugin contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("none", "low", "medium", "high")
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class RuleInfo:
    """Who a rule is: its name (unique), version, one-line purpose and the metrics it produces.

    ``counts`` names the metrics that are whole numbers; every other metric is a real number.
    """

    name: str
    version: str
    description: str
    metrics: tuple[str, ...]
    counts: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricNames:
    """Every metric the loaded rules produce, in order, and which of them are counts. Iterates as names."""

    names: tuple[str, ...]
    counts: frozenset[str] = frozenset()

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names


@dataclass(frozen=True)
class Assessment:
    """One rule's verdict on one tutor as of a moment.

    ``explanation`` is stored with every flag raised or cleared, so it must say why
    in data: the counts, the window, the thresholds and the rule version.
    """

    rule: str
    version: str
    metrics: dict[str, float | int | None]
    flagged: bool
    severity: str = "none"
    risk_score: float = 0.0
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Advice:
    """Sentences for an admin: what the numbers show (insights) and what to do (recommendations)."""

    rule: str
    insights: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)


def rate_percent(numerator: int, denominator: int) -> float | None:
    """A percentage rounded to 2 decimals; ``None`` when there is nothing to divide by."""
    if denominator <= 0:
        return None
    return round(100.0 * numerator / denominator, 2)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval in percent (2 decimals): tells 1 of 3 apart from 30 of 90."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return round(100 * max(0.0, centre - half), 2), round(100 * min(1.0, centre + half), 2)
