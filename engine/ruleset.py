"""Run the loaded rules: each on its own, with its own settings and flag, its results checked.

The engine owns a result's identity: it fills in the rule's name and version, so one rule
cannot overwrite another's result. A rule that raises, or returns something malformed, is
reported as a :class:`RuleError` naming it, and the other rules still score the tutor.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from engine.rulekit import SEVERITIES, Advice, Assessment, MetricNames, RuleInfo, RuleSettings
from engine.windows import WINDOW_DAYS, TutorHistory

ENGINE_METRICS = tuple(f"sessions_{days}d" for days in WINDOW_DAYS)  # every tutor's, whatever rules run
ENGINE_OWNER = ""  # the ``rule`` of a metric the engine itself measures


class RuleError(RuntimeError):
    """A rule raised or returned something the engine cannot use; the message names the rule."""

    def __init__(self, rule: str, problem: str):
        self.rule, self.problem = rule, problem
        super().__init__(f"rule {rule!r} {problem}")


@dataclass(frozen=True)
class LoadedRule:
    """A rule that loaded: who it is, where it came from and its validated settings."""

    info: RuleInfo
    module: str
    source: str
    settings: RuleSettings
    weight: float

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True)
class RuleStatus:
    """What became of one installed rule: ``loaded``, ``disabled`` (by configuration) or ``failed``."""

    name: str
    status: str
    source: str
    version: str = ""
    error: str = ""


class RuleSet:
    """The rules this process runs, and what became of the ones it does not."""

    def __init__(self, pm: pluggy.PluginManager, rules: Iterable[LoadedRule], statuses: Iterable[RuleStatus]):
        self.pm = pm
        self.rules = {rule.name: rule for rule in sorted(rules, key=lambda rule: (rule.info.rank, rule.name))}
        ranks = {rule.name: rule.info.rank for rule in self.rules.values()}
        self.statuses = sorted(statuses, key=lambda status: (status.name not in ranks, ranks.get(status.name, 0),
                                                             status.name))  # loaded rules first, as listed
        self._impls = {hook: _impls_by_rule(pm, hook, self.rules) for hook in ("assess_tutor", "advise_tutor")}
        self.metric_names = _metric_names(self.rules.values(), tuple(sorted(self.failed)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.rules)

    @property
    def failed(self) -> dict[str, str]:
        """Rules that are installed and chosen but did not load, with why (a second rule of a loaded rule's
        name is refused, but the name is not failed: its results are the loaded rule's)."""
        return {s.name: s.error for s in self.statuses if s.status == "failed" and s.name not in self.rules}

    def window_days(self, name: str) -> int:
        """The window a rule decides on (its ``window_days`` setting), 30 days when it has none of 7, 30, 90."""
        days = self.rules[name].settings.get("window_days") if name in self.rules else None
        return days if days in WINDOW_DAYS else 30

    def engine_metrics(self, history: TutorHistory, as_of: dt.datetime) -> dict[str, int]:
        """What the engine measures of every tutor: sessions in each window."""
        return {name: history.window(days, as_of).sessions for name, days in zip(ENGINE_METRICS, WINDOW_DAYS,
                                                                                   strict=True)}

    def assess(self, name: str, history: TutorHistory, as_of: dt.datetime, was_flagged: bool) -> Assessment:
        """One rule's checked assessment; :class:`RuleError` when it raises or returns something unusable."""
        rule = self.rules[name]
        result = _call(self._impls["assess_tutor"][name], name, history=history, as_of=as_of,
                       was_flagged=was_flagged, settings=rule.settings)
        return check_assessment(rule.info, result)

    def advise(self, name: str, history: TutorHistory, as_of: dt.datetime,
               assessments: Mapping[str, Assessment]) -> Advice:
        """One rule's checked advice on its current assessment (empty when it has no ``advise_tutor``)."""
        impl = self._impls["advise_tutor"].get(name)
        if impl is None:
            return Advice(rule=name)
        result = _call(impl, name, history=history, as_of=as_of, assessment=assessments[name],
                       assessments=assessments, settings=self.rules[name].settings)
        return check_advice(name, result)

    def overall_risk(self, risks: Mapping[str, float]) -> float:
        """The tutor's risk from every rule's: 100 x (1 - product of (1 - weight x risk / 100)), each term
        capped at 1. One rule at weight 1 gives its own score; two concerns score higher than either."""
        remaining = 1.0
        for name, risk in risks.items():
            weight = self.rules[name].weight if name in self.rules else 1.0
            remaining *= 1 - min(1.0, max(0.0, weight * risk / 100))
        return round(100 * (1 - remaining), 1)


def check_assessment(info: RuleInfo, result: Any) -> Assessment:
    """The result with the engine's identity on it, or :class:`RuleError` saying what is wrong with it.

    It runs for every rule on every day scored, so the common case (plain Python numbers, a flat
    explanation) is checked without copying; anything else takes the slower, converting path.
    """
    name = info.name
    if not isinstance(result, Assessment):
        raise RuleError(name, f"returned {type(result).__name__} from assess_tutor, not an Assessment")
    if result.rule not in ("", name):
        raise RuleError(name, f"labelled its result {result.rule!r}: leave rule= out, the engine fills it in")
    if not isinstance(result.metrics, dict):
        raise RuleError(name, "returned metrics that are not a dict")
    if result.metrics.keys() - info.metrics:
        unknown = sorted(map(str, result.metrics.keys() - set(info.metrics)))
        raise RuleError(name, f"returned undeclared metrics {', '.join(unknown)}: declare them in describe_rule")
    metrics = {metric: _metric(name, metric, result.metrics.get(metric)) for metric in info.metrics}
    flagged = _plain(result.flagged)
    if type(flagged) is not bool:
        raise RuleError(name, f"returned flagged={result.flagged!r}: it must be True or False")
    if result.severity not in SEVERITIES:
        raise RuleError(name, f"returned severity {result.severity!r}: use one of {', '.join(SEVERITIES)}")
    risk = _plain(result.risk_score)
    if type(risk) not in (int, float) or not 0 <= risk <= 100:
        raise RuleError(name, f"returned risk_score={result.risk_score!r}: it must be a number from 0 to 100")
    explanation = _explanation(name, result.explanation)
    explanation["rule_version"] = info.version  # every stored flag says which version decided it
    return Assessment(metrics, flagged, result.severity, float(risk), explanation, name, info.version)


def _metric(rule: str, metric: str, value: Any) -> float | int | None:
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return value
    elif kind is int or value is None:
        return value
    else:
        value = _plain(value)
        if type(value) in (int, float) and math.isfinite(value):
            return value
    raise RuleError(rule, f"returned {metric}={value!r}: a metric is a finite number or None")


JSON_LEAVES = (str, int, bool, type(None))


def _explanation(rule: str, explanation: Any) -> dict[str, Any]:
    """A copy as it reads back from the database (so a tuple or a number key does not look changed on
    every rescore); a flat dict of plain values is that already."""
    if type(explanation) is not dict:
        raise RuleError(rule, "returned an explanation that is not a dict")
    if all(type(key) is str and (type(value) in JSON_LEAVES or (type(value) is float and math.isfinite(value)))
           for key, value in explanation.items()):
        return dict(explanation)
    try:
        return json.loads(json.dumps(explanation, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise RuleError(rule, f"returned an explanation that is not JSON: {exc}") from None


def _plain(value: Any) -> Any:
    """A NumPy scalar (``np.float64``, ``np.bool_``) as the Python value it holds."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def check_advice(name: str, result: Any) -> Advice:
    if result is None:
        return Advice(rule=name)
    if not isinstance(result, Advice):
        raise RuleError(name, f"returned {type(result).__name__} from advise_tutor, not an Advice or None")
    for kind in ("insights", "recommendations"):
        sentences = getattr(result, kind)
        if not isinstance(sentences, list | tuple) or not all(isinstance(s, str) for s in sentences):
            raise RuleError(name, f"returned {kind} that are not a list of sentences")
    return replace(result, rule=name, insights=list(result.insights), recommendations=list(result.recommendations))


def _call(impl: pluggy.HookImpl, name: str, **arguments: Any) -> Any:
    try:
        return impl.function(*[arguments[arg] for arg in impl.argnames])
    except RuleError:
        raise
    except Exception as exc:
        raise RuleError(name, f"raised {type(exc).__name__}: {exc}") from exc


def _impls_by_rule(pm: pluggy.PluginManager, hook: str, rules: Mapping[str, LoadedRule]) -> dict[str, Any]:
    impls = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        if impl.plugin_name in rules:
            impls[impl.plugin_name] = impl
    return impls


def _metric_names(rules: Iterable[LoadedRule], failed: tuple[str, ...]) -> MetricNames:
    infos = [rule.info for rule in rules]
    rates = tuple((info.name, info.rate) for info in infos if info.rate is not None)
    return MetricNames(
        (*ENGINE_METRICS, *(name for info in infos for name in info.metrics)),
        frozenset((*ENGINE_METRICS, *(name for info in infos for name in info.counts))),
        rates,
        (*(info.name for info in infos), *failed),
        failed,
    )
