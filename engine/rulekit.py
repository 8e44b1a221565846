"""What a rule declares and returns, and the helpers rule authors share (rates, Wilson intervals).

Rule plugins import all of this from :mod:`engine.plugin`, the one public module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("none", "low", "medium", "high")
Z_95 = 1.959963984540054
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # rule and setting names become parts of variable names
SettingValue = float | int | bool | str


@dataclass(frozen=True)
class Setting:
    """A setting a rule declares: read from ``TQS_RULE_<RULE>_<NAME>`` and checked at start-up.

    Its type is the type of ``default`` (float, int, bool or str). ``aliases`` are older
    variable names still honoured, so a rule can keep a documented variable.
    """

    name: str
    default: SettingValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[SettingValue, ...] = ()
    aliases: tuple[str, ...] = ()

    def parse(self, raw: str) -> SettingValue:
        """The value of a variable's text, or ValueError saying what it must be."""
        kind = type(self.default)
        text = raw.strip()
        if kind in (int, float) and "_" in text:  # Python reads 1_5 as 15; a variable should not
            raise ValueError("must be a number" if kind is float else "must be a whole number")
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError("must be true or false")
            value: SettingValue = text.lower() in ("true", "1", "yes")
        elif kind is int:
            try:
                value = int(text)
            except ValueError:
                raise ValueError("must be a whole number") from None
        elif kind is float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError("must be a number") from None
            if not math.isfinite(value):
                raise ValueError("must be a finite number")
        else:
            value = text
        self.check(value)
        return value

    def check(self, value: SettingValue) -> None:
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:  # type: ignore[operator]
            raise ValueError(f"must be at most {self.maximum:g}")


class RuleSettings(Mapping[str, SettingValue]):
    """A rule's own validated settings: ``settings.threshold`` or ``settings["threshold"]``."""

    def __init__(self, values: Mapping[str, SettingValue]):
        self._values = dict(values)

    def __getattr__(self, name: str) -> SettingValue:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no setting {name!r}; this rule has: {', '.join(self._values)}") from None

    def __getitem__(self, name: str) -> SettingValue:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RuleSettings({self._values!r})"


@dataclass(frozen=True)
class Rate:
    """A rate the rule measures in every window, so readers can show it without knowing the rule.

    The rule's metrics then include ``<name>_<N>d`` (percent) and ``<events>_<N>d`` for each
    window N, and optionally ``<name>_<N>d_low`` / ``_high`` (its 95% interval); the
    denominator is ``<base>_<N>d``, by default the sessions the engine counts for every tutor.
    """

    name: str
    label: str
    events: str
    events_label: str
    base: str = "sessions"
    base_label: str = "sessions"

    def metric(self, days: int) -> str:
        return f"{self.name}_{days}d"

    def events_metric(self, days: int) -> str:
        return f"{self.events}_{days}d"

    def base_metric(self, days: int) -> str:
        return f"{self.base}_{days}d"


@dataclass(frozen=True)
class RuleInfo:
    """Who a rule is: its name (unique), version, purpose, the metrics it produces and its settings.

    ``counts`` names the metrics that are whole numbers; every other metric is a real number.
    ``weight`` is the rule's default share of the overall risk score (``TQS_RULE_<RULE>_WEIGHT``).
    ``rank`` orders the rules wherever they are listed together (lowest first, then by name).
    """

    name: str
    version: str
    description: str
    metrics: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()
    settings: tuple[Setting, ...] = ()
    rate: Rate | None = None
    weight: float = 1.0
    rank: int = 50


@dataclass(frozen=True)
class MetricNames:
    """What readers show: every metric the engine and the loaded rules produce, in order, which of them
    are counts, the rate each rule declares (by rule name), the rules whose results are shown (loaded,
    or failed to load and so kept as they were) and the ones of those that failed. Iterates as names."""

    names: tuple[str, ...]
    counts: frozenset[str] = frozenset()
    rates: tuple[tuple[str, Rate], ...] = ()
    rules: tuple[str, ...] | None = None  # None: every stored rule
    failed: tuple[str, ...] = ()

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names


@dataclass(frozen=True)
class Assessment:
    """One rule's verdict on one tutor as of a moment.

    ``explanation`` is stored with every flag raised or cleared, so it must say why in data:
    the counts, the window and the thresholds. ``rule`` and ``version`` are filled in by the
    engine; a rule leaves them out.
    """

    metrics: dict[str, float | int | None]
    flagged: bool
    severity: str = "none"
    risk_score: float = 0.0
    explanation: dict[str, Any] = field(default_factory=dict)
    rule: str = ""
    version: str = ""


@dataclass(frozen=True)
class Advice:
    """Sentences for an admin: what the numbers show (insights) and what to do (recommendations)."""

    insights: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    rule: str = ""


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


def rate_metrics(rate: Rate, counts_by_window: Mapping[int, tuple[int, int]]) -> dict[str, float | int | None]:
    """The standard metrics of a :class:`Rate`: per window, the event count, the rate and its 95% interval.

    ``counts_by_window`` maps window days to (events, base).
    """
    metrics: dict[str, float | int | None] = {}
    for days, (events, base) in counts_by_window.items():
        low, high = wilson_interval(events, base) or (None, None)
        name = rate.metric(days)
        metrics[rate.events_metric(days)] = events
        metrics[name] = rate_percent(events, base)
        metrics[f"{name}_low"] = low
        metrics[f"{name}_high"] = high
    return metrics


def rate_metric_names(rate: Rate, windows: tuple[int, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The metric names :func:`rate_metrics` produces, and which of them are counts."""
    names = tuple(name for days in windows for name in (rate.events_metric(days), rate.metric(days),
                                                         f"{rate.metric(days)}_low", f"{rate.metric(days)}_high"))
    return names, tuple(rate.events_metric(days) for days in windows)
