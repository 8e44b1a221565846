"""Load the rules: every ``tutor_quality.rules`` entry point, each checked and given its settings.

The built-in reschedule-rate rule is one of those entry points (see ``setup.cfg``), so it
loads exactly as a third-party rule does. ``TQS_RULES`` chooses which rules run and
``TQS_DISABLED_RULES`` leaves some out. A rule that fails to import or to describe itself
is logged and skipped (its status says why); a bad setting value stops start-up with a
message naming the variable. A fresh registry per caller keeps tests from leaking plugins.

Settings changed at runtime (``tqs rules set``, ``PUT /api/rules/{name}``) are stored in the
database and passed in as ``stored``: they override the environment, which stays the default,
and are checked exactly as the environment's values are (:func:`parse_changes`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pluggy

from engine import hookspecs
from engine.config import ConfigError, Settings
from engine.logs import log_event
from engine.rulekit import NAME_PATTERN, RuleInfo, RuleSettings, Setting, SettingValue
from engine.ruleset import ENGINE_METRICS, LoadedRule, RuleSet, RuleStatus
from engine.windows import WINDOW_DAYS

ENTRY_POINT_GROUP = "tutor_quality.rules"
HOOKS = ("describe_rule", "check_settings", "assess_tutor", "advise_tutor")
MAX_VERSION, MAX_METRIC = 32, 64  # the widths of the columns that store them
RULE_PREFIX = "TQS_RULE_"
WEIGHT = "weight"
ENABLED = "enabled"  # the stored switch that overrides TQS_RULES / TQS_DISABLED_RULES for one rule
StoredSettings = Mapping[str, Mapping[str, str]]  # rule -> setting -> value as text
log = logging.getLogger("tutor_quality.rules")


class RuleLoadError(RuntimeError):
    """One rule cannot be used as written: misspelled hook, no ``describe_rule``, a clash with another rule."""


@dataclass(frozen=True)
class _Candidate:
    name: str
    load: Callable[[], object]
    source: str


def setting_variable(rule: str, setting: str) -> str:
    """``TQS_RULE_MY_RULE_THRESHOLD`` for rule ``my_rule``, setting ``threshold``."""
    return f"{RULE_PREFIX}{rule.upper()}_{setting.upper()}"


def weight_setting(info: RuleInfo) -> Setting:
    """The setting every rule has: its share of the overall risk score."""
    return Setting(WEIGHT, float(info.weight), "how much this rule counts in the overall risk score (0 ignores it)",
                   minimum=0.0, maximum=10.0)


def load_rules(settings: Settings, extra_plugins: Iterable[object] = (), entry_points: bool = True,
               stored: StoredSettings | None = None, strict: bool = False) -> RuleSet:
    """Every installed rule (entry points, then ``extra_plugins``), chosen by ``TQS_RULES`` / ``TQS_DISABLED_RULES``
    unless a stored ``enabled`` says otherwise, with the stored settings over the environment's.

    A stored value a rule rejects is left out (logged), and a rule switched on at runtime whose variables are
    bad fails to load rather than stopping every process; with ``strict`` (a change being checked before it is
    stored) either raises ConfigError instead."""
    stored = stored or {}
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    candidates = _entry_point_candidates() if entry_points else []
    candidates += [_Candidate(_declared_name(plugin), lambda plugin=plugin: plugin, "registered directly")
                   for plugin in extra_plugins]
    _check_chosen(settings, [c.name for c in candidates])
    loaded: list[LoadedRule] = []
    statuses: list[RuleStatus] = []
    metric_owners = dict.fromkeys(ENGINE_METRICS, "the engine")
    taken: set[str] = set()  # every loaded rule's variables: rule "a" with "b_c" is rule "a_b" with "c"
    for candidate in candidates:
        chosen = (settings.rules is None or candidate.name in settings.rules) and \
            candidate.name not in settings.disabled_rules
        switch = stored.get(candidate.name, {}).get(ENABLED)
        if switch is not None:
            chosen = _parse_enabled(switch)
        if not chosen:
            statuses.append(RuleStatus(candidate.name, "disabled", candidate.source,
                                       error="disabled at runtime" if switch is not None else ""))
            continue
        try:
            if pm.has_plugin(candidate.name):
                raise RuleLoadError(f"another installed rule is already called {candidate.name!r}")
            plugin = candidate.load()
            info = _register(pm, candidate.name, plugin, metric_owners)
            clash = sorted(set(_variables(info)) & taken)
            if clash:
                raise RuleLoadError(f"its variables {', '.join(clash)} are another rule's: rename a setting")
            rule_settings = _rule_settings(pm, info, settings.rule_env, stored.get(info.name, {}), strict)
        except ConfigError:  # a bad value of a variable: the operator's to fix, so start-up stops
            if switch is None or strict:
                raise
            if pm.has_plugin(candidate.name):
                pm.unregister(name=candidate.name)
            error = f"switched on at runtime, but {sys.exc_info()[1]}"
            log_event(log, "rule_failed_to_load", logging.ERROR, rule=candidate.name, error=error)
            statuses.append(RuleStatus(candidate.name, "failed", candidate.source, error=error))
            continue
        except Exception as exc:  # a broken rule must not take the others down
            if pm.has_plugin(candidate.name) and not any(r.name == candidate.name for r in loaded):
                pm.unregister(name=candidate.name)
            error = str(exc) if isinstance(exc, RuleLoadError) else f"{type(exc).__name__}: {exc}"
            log_event(log, "rule_failed_to_load", logging.ERROR, rule=candidate.name, error=error)
            statuses.append(RuleStatus(candidate.name, "failed", candidate.source, error=error))
            continue
        module = getattr(plugin, "__name__", type(plugin).__module__)
        source = candidate.source if candidate.source != "registered directly" else _direct_source(module)
        loaded.append(LoadedRule(info, module, source, rule_settings, float(rule_settings[WEIGHT])))
        statuses.append(RuleStatus(info.name, "loaded", source, info.version))
        metric_owners.update(dict.fromkeys(info.metrics, info.name))
        taken.update(_variables(info))
    _check_rule_variables(settings.rule_env, loaded, [s.name for s in statuses])
    return RuleSet(pm, loaded, statuses)


def _variables(info: RuleInfo) -> list[str]:
    return [setting_variable(info.name, setting.name) for setting in (*info.settings, weight_setting(info))]


def _entry_point_candidates() -> list[_Candidate]:
    found = []
    for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        dist = entry_point.dist
        source = f"{dist.name} {dist.version} (entry point)" if dist else f"{entry_point.value} (entry point)"
        found.append(_Candidate(entry_point.name, entry_point.load, source))
    return found


def _declared_name(plugin: object) -> str:
    describe = getattr(plugin, "describe_rule", None)
    try:
        return describe().name  # type: ignore[misc]
    except Exception:
        return getattr(plugin, "__name__", type(plugin).__name__)


def _register(pm: pluggy.PluginManager, name: str, plugin: object, metric_owners: Mapping[str, str]) -> RuleInfo:
    """Register one rule under its name and check it; on any problem it is unregistered again."""
    pm.register(plugin, name=name)
    try:
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise RuleLoadError(str(exc)) from None
        impls = [impl for impl in pm.hook.describe_rule.get_hookimpls() if impl.plugin_name == name]
        if not impls:
            raise RuleLoadError(f"{name!r} does not implement describe_rule")
        info = impls[0].function()
        _check_hooks(pm, name)
        _check_info(name, info, metric_owners)
        return info
    except BaseException:
        pm.unregister(name=name)
        raise


def _check_hooks(pm: pluggy.PluginManager, name: str) -> None:
    """Every rule scores (``assess_tutor``); hooks are plain functions called with the arguments they name."""
    hooks = {hook: impl for hook in HOOKS for impl in getattr(pm.hook, hook).get_hookimpls()
             if impl.plugin_name == name}
    if "assess_tutor" not in hooks:
        raise RuleLoadError(f"{name!r} does not implement assess_tutor, so it cannot score a tutor")
    for hook, impl in hooks.items():
        if impl.hookwrapper or impl.wrapper:
            raise RuleLoadError(f"{hook} must be a plain hook, not a wrapper")
        if impl.kwargnames:
            raise RuleLoadError(f"{hook}'s parameters {', '.join(impl.kwargnames)} must not have defaults: "
                                "the engine passes every parameter a hook names")


def _check_info(name: str, info: object, metric_owners: Mapping[str, str]) -> None:
    if not isinstance(info, RuleInfo):
        raise RuleLoadError(f"describe_rule returned {type(info).__name__}, not a RuleInfo")
    if info.name != name:
        raise RuleLoadError(f"the entry point is named {name!r} but the rule calls itself {info.name!r}: "
                            "use the rule's name for both")
    if not NAME_PATTERN.match(info.name):
        raise RuleLoadError(f"rule name {info.name!r} must be lower case letters, digits and _ (it names variables)")
    if not isinstance(info.version, str) or not info.version or len(info.version) > MAX_VERSION:
        raise RuleLoadError(f"describe_rule must give a version string of 1 to {MAX_VERSION} characters")
    for metric in info.metrics:
        if not isinstance(metric, str) or not NAME_PATTERN.match(metric) or len(metric) > MAX_METRIC:
            raise RuleLoadError(f"metric name {metric!r} must be lower case letters, digits and _, at most "
                                f"{MAX_METRIC} characters")
    for metric in info.metrics:
        if metric in metric_owners:
            raise RuleLoadError(f"metric {metric!r} is already produced by {metric_owners[metric]}: "
                                "prefix metric names with what the rule measures")
    missing = sorted(set(info.counts) - set(info.metrics))
    if missing:
        raise RuleLoadError(f"counts {', '.join(missing)} are not among its metrics")
    if info.rate is not None:
        for part in (info.rate.name, info.rate.events, info.rate.base):
            if not NAME_PATTERN.match(part):
                raise RuleLoadError(f"rate name {part!r} must be lower case letters, digits and _")
        wanted = [info.rate.metric(d) for d in WINDOW_DAYS] + [info.rate.events_metric(d) for d in WINDOW_DAYS]
        if info.rate.base != "sessions":
            wanted += [info.rate.base_metric(d) for d in WINDOW_DAYS]
        absent = [metric for metric in wanted if metric not in info.metrics]
        if absent:
            raise RuleLoadError(f"its rate needs the metrics {', '.join(absent)}")
    names = [setting.name for setting in info.settings]
    for setting in info.settings:
        if not isinstance(setting, Setting) or not NAME_PATTERN.match(setting.name):
            raise RuleLoadError(f"setting {setting!r} must be a Setting named in lower case")
        if setting.name == WEIGHT or names.count(setting.name) > 1:
            raise RuleLoadError(f"setting {setting.name!r} is declared twice (every rule has a weight)")
        try:
            setting.check(setting.default)
        except ValueError as exc:
            raise RuleLoadError(f"the default of setting {setting.name!r} {exc}") from None


def _rule_settings(pm: pluggy.PluginManager, info: RuleInfo, env: Mapping[str, str],
                   stored: Mapping[str, str], strict: bool = False) -> RuleSettings:
    """The rule's declared settings with the values of their variables, then the stored values, each checked.

    ConfigError names a bad variable. A stored value the rule no longer accepts (it was upgraded)
    is logged and left out, so the environment's value holds: a worker must not stop over it.
    """
    from_env = _env_settings(pm, info, env)
    declared = {setting.name: setting for setting in (*info.settings, weight_setting(info))}
    overrides = {name: raw for name, raw in stored.items() if name != ENABLED}
    if not overrides:
        return from_env
    values: dict[str, SettingValue] = {}
    for name, raw in sorted(overrides.items()):
        try:
            values[name] = _parse_values(declared, {name: raw})[name]
        except ValueError as exc:
            _stored_value_rejected(info, name, exc, strict)
    try:  # together first: a stored clear_threshold may only hold beside the stored threshold
        return _checked(pm, info, {**from_env, **values})
    except ValueError as exc:
        if strict:
            raise ConfigError(f"rule {info.name!r}: {exc}") from None
    kept: dict[str, SettingValue] = {}
    for name, value in values.items():  # then each on its own, in name order: one rejected leaves the others
        try:
            _checked(pm, info, {**from_env, **kept, name: value})
            kept[name] = value
        except ValueError as exc:
            _stored_value_rejected(info, name, exc, strict)
    return _checked(pm, info, {**from_env, **kept})


def _stored_value_rejected(info: RuleInfo, name: str, exc: ValueError, strict: bool) -> None:
    if strict:
        raise ConfigError(f"rule {info.name!r}: {exc}") from None
    log_event(log, "stored_setting_ignored", logging.ERROR, rule=info.name, setting=name, error=str(exc))


def parse_changes(rules: RuleSet, rule: str, changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """Each change in canonical text (``None``: back to the environment's value); ValueError says what is wrong,
    naming the setting, exactly as for a bad variable. ``enabled`` switches the rule on or off; other settings
    are checked against the loaded rule, alone and together with its other settings."""
    installed = {status.name: status for status in rules.statuses}
    if rule not in installed:
        raise ValueError(f"no installed rule is called {rule!r}; installed: {', '.join(sorted(installed))}")
    if not changes:
        raise ValueError("name at least one setting to change, as key=value")
    parsed: dict[str, str | None] = {}
    if ENABLED in changes:
        raw = changes[ENABLED]
        parsed[ENABLED] = None if raw is None else setting_text(_parse_enabled(raw))
    others = {name: raw for name, raw in changes.items() if name != ENABLED}
    if not others:
        return parsed
    loaded = rules.rules.get(rule)
    if loaded is None:
        raise ValueError(f"rule {rule!r} is {installed[rule].status}: enable it (enabled=true) before changing "
                         "its settings")
    declared = {setting.name: setting for setting in (*loaded.info.settings, weight_setting(loaded.info))}
    unknown = sorted(set(others) - set(declared))
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a setting of this rule; its settings are {', '.join(declared)}, "
                         f"and {ENABLED}")
    values = _parse_values(declared, {name: raw for name, raw in others.items() if raw is not None})
    _checked(rules.pm, loaded.info, {**loaded.settings, **values})
    parsed.update({name: None if raw is None else setting_text(values[name]) for name, raw in others.items()})
    return parsed


def effective_settings(rules: RuleSet, rule: str) -> dict[str, str]:
    """What a rule runs with, in canonical text: every setting when it is loaded, and ``enabled``."""
    status = next((s.status for s in rules.statuses if s.name == rule), "disabled")
    loaded = rules.rules.get(rule)
    values = {name: setting_text(value) for name, value in loaded.settings.items()} if loaded else {}
    return {ENABLED: setting_text(status != "disabled"), **values}


def with_settings(rules: RuleSet, rule: str, changes: Mapping[str, str]) -> RuleSet:
    """The same rules with one rule's settings changed (checked as :func:`parse_changes` does), for a what-if."""
    loaded = rules.rules[rule]
    declared = {setting.name: setting for setting in (*loaded.info.settings, weight_setting(loaded.info))}
    values = _checked(rules.pm, loaded.info, {**loaded.settings, **_parse_values(declared, changes)})
    changed = dataclasses.replace(loaded, settings=values, weight=float(values[WEIGHT]))
    return RuleSet(rules.pm, [changed if r.name == rule else r for r in rules.rules.values()], rules.statuses)


def _parse_values(declared: Mapping[str, Setting], raw: Mapping[str, str]) -> dict[str, SettingValue]:
    values = {}
    for name, text in raw.items():
        setting = declared.get(name)
        if setting is None:
            raise ValueError(f"{name!r} is not a setting of this rule; its settings are {', '.join(declared)}, "
                             f"and {ENABLED}")
        try:
            values[name] = setting.parse(str(text))
        except ValueError as exc:
            raise ValueError(f"{name}={str(text).strip()!r}: {exc} ({setting.description})") from None
    return values


def _checked(pm: pluggy.PluginManager, info: RuleInfo, values: Mapping[str, SettingValue]) -> RuleSettings:
    """The settings once the rule's own ``check_settings`` accepts how they fit together (else ValueError)."""
    rule_settings = RuleSettings(values)
    for impl in pm.hook.check_settings.get_hookimpls():
        if impl.plugin_name == info.name:
            impl.function(*[{"settings": rule_settings}[arg] for arg in impl.argnames])
    return rule_settings


def _parse_enabled(raw: str) -> bool:
    text = str(raw).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"{ENABLED}={str(raw).strip()!r}: must be true or false")
    return text in ("true", "1", "yes")


def setting_text(value: SettingValue) -> str:
    """A setting's value as stored and shown, exactly: ``12`` not ``12.0``, ``12.345678`` in full, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _env_settings(pm: pluggy.PluginManager, info: RuleInfo, env: Mapping[str, str]) -> RuleSettings:
    values = {}
    chosen = []  # the variables that set something, for an error about how settings fit together
    for setting in (*info.settings, weight_setting(info)):
        variable = setting_variable(info.name, setting.name)
        given = [(name, env[name]) for name in (variable, *setting.aliases) if env.get(name, "").strip()]
        parsed = []
        for name, raw in given:
            try:
                parsed.append(setting.parse(raw))
            except ValueError as exc:
                raise ConfigError(f"{name}={raw.strip()!r}: {exc} ({setting.description})") from None
        if len(set(parsed)) > 1:
            raise ConfigError(f"{' and '.join(name for name, _ in given)} disagree: set one of them")
        if not given:
            values[setting.name] = setting.default
            continue
        chosen.append(f"{given[0][0]}={given[0][1].strip()}")
        values[setting.name] = parsed[0]
    try:
        return _checked(pm, info, values)
    except ValueError as exc:
        set_by = f" (set: {', '.join(chosen)})" if chosen else ""
        raise ConfigError(f"rule {info.name!r} settings{set_by}: {exc}") from None


def _check_chosen(settings: Settings, installed: list[str]) -> None:
    for variable, chosen in (("TQS_RULES", settings.rules or frozenset()),
                             ("TQS_DISABLED_RULES", settings.disabled_rules)):
        unknown = sorted(chosen - set(installed))
        if unknown:
            raise ConfigError(f"{variable} names {', '.join(unknown)}, which no installed rule is called; "
                              f"installed: {', '.join(sorted(set(installed))) or 'none'}")


def _check_rule_variables(env: Mapping[str, str], loaded: list[LoadedRule], installed: list[str]) -> None:
    """A ``TQS_RULE_*`` variable that no rule declares is a typo, not something to ignore.

    Variables of rules that are installed but not loaded (disabled, failed) are left alone.
    """
    declared = {setting_variable(rule.name, name): rule for rule in loaded for name in rule.settings}
    declared.update({alias: rule for rule in loaded for setting in rule.info.settings for alias in setting.aliases})
    owners = sorted(set(installed), key=len, reverse=True)
    for variable in sorted(name for name in env if name.startswith(RULE_PREFIX)):
        if variable in declared:
            continue
        owner = next((rule for rule in owners if variable.startswith(f"{RULE_PREFIX}{rule.upper()}_")), None)
        if owner is None:
            raise ConfigError(f"{variable} names no installed rule (installed: {', '.join(sorted(set(installed)))})")
        rule = next((rule for rule in loaded if rule.name == owner), None)
        if rule is not None:
            known = ", ".join(setting_variable(rule.name, name) for name in rule.settings)
            raise ConfigError(f"{variable} is not a setting of rule {owner!r}; its settings are {known}")


def _direct_source(module: str) -> str:
    origin = getattr(sys.modules.get(module), "__file__", None)
    return f"registered directly ({origin or module})"

