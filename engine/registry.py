"""Build the plugin manager: hook specs, then every rule from the ``tutor_quality.rules`` entry points.

The built-in reschedule-rate rule is one of those entry points (see ``setup.cfg``), so it
loads exactly as a third-party rule does. ``TQS_RULES`` restricts which rules load.
A fresh manager per caller keeps tests from leaking plugins into each other.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import pluggy

from engine import hookspecs
from engine.config import Settings
from engine.rulekit import MetricNames, RuleInfo

ENTRY_POINT_GROUP = "tutor_quality.rules"


class RuleLoadError(RuntimeError):
    """A rule plugin is broken: misspelled hook, missing ``describe_rule``, duplicate name."""


@dataclass(frozen=True)
class LoadedRule:
    info: RuleInfo
    module: str
    source: str


def get_plugin_manager(
    settings: Settings, extra_plugins: Iterable[object] = (), entry_points: bool = True
) -> pluggy.PluginManager:
    """Specs first, then entry-point rules (filtered by ``settings.rules``), then ``extra_plugins``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if entry_points:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if settings.rules is not None and entry_point.name not in settings.rules:
                continue
            if pm.has_plugin(entry_point.name):
                continue
            pm.register(entry_point.load(), name=entry_point.name)
    for plugin in extra_plugins:
        pm.register(plugin)
    _check(pm)
    return pm


def _check(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise RuleLoadError(str(exc)) from exc
    names: set[str] = set()
    described = {impl.plugin for impl in pm.hook.describe_rule.get_hookimpls()}
    for plugin in pm.get_plugins():
        if plugin not in described:
            raise RuleLoadError(f"plugin {pm.get_name(plugin)!r} does not implement describe_rule")
    for info in pm.hook.describe_rule():
        if info.name in names:
            raise RuleLoadError(f"two rules are named {info.name!r}")
        names.add(info.name)


def loaded_rules(pm: pluggy.PluginManager) -> list[LoadedRule]:
    """The registered rules with where each came from (distribution and version, or 'registered directly')."""
    distributions = importlib.metadata.packages_distributions()
    rules = []
    for impl in pm.hook.describe_rule.get_hookimpls():
        module = getattr(impl.plugin, "__name__", type(impl.plugin).__module__)
        rules.append(LoadedRule(impl.function(), module, _source(module, distributions)))
    return sorted(rules, key=lambda rule: rule.info.name)


def metric_names(pm: pluggy.PluginManager) -> MetricNames:
    """Every metric any loaded rule produces, in rule then declaration order, with which are counts."""
    infos = sorted(pm.hook.describe_rule(), key=lambda info: info.name)
    return MetricNames(tuple(name for info in infos for name in info.metrics),
                       frozenset(name for info in infos for name in info.counts))


def _source(module: str, distributions: dict[str, list[str]]) -> str:
    top = module.split(".")[0]
    for dist in distributions.get(top, []):
        entry_points = importlib.metadata.distribution(dist).entry_points
        if any(ep.group == ENTRY_POINT_GROUP and ep.value.split(":")[0] == module for ep in entry_points):
            return f"{dist} {importlib.metadata.version(dist)} (entry point)"
    origin = getattr(sys.modules.get(module), "__file__", None)
    return f"registered directly ({origin or module})"
