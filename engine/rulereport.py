"""Every installed rule as admins see it (``tqs rules``, ``GET /api/rules``, the dashboard): status, version,
source, and each setting with its value, default, variable and where the value comes from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import queries
from engine.registry import setting_variable, weight_setting
from engine.rulekit import RuleInfo, Setting
from engine.ruleset import RuleSet


def describe_rules(rules: RuleSet, stored: Mapping[str, Mapping[str, str]], env: Mapping[str, str]) -> list[dict]:
    """One record per installed rule (the caller holds a connection: failures and versions are read)."""
    failing, versions = queries.rule_failures(), queries.stored_rule_versions()
    report = []
    for status in rules.statuses:
        loaded = rules.rules.get(status.name) if status.status == "loaded" else None
        entry: dict[str, Any] = {"name": status.name, "status": status.status, "version": status.version or None,
                                 "source": status.source,
                                 "enabled_at_runtime": _enabled(stored.get(status.name, {}))}
        if status.error:
            entry["error"] = status.error
        if loaded:
            entry.update(description=loaded.info.description, module=loaded.module, settings=[
                _setting(status.name, _declared(loaded.info, name), value, stored.get(status.name, {}), env)
                for name, value in loaded.settings.items()])
            outdated = sum(n for version, n in versions.get(status.name, {}).items() if version != loaded.info.version)
            if outdated:
                entry["outdated_tutors"] = outdated
        if status.name in failing and status.status != "disabled":
            entry["failing"] = failing[status.name]
        report.append(entry)
    return report


def _setting(rule: str, declared: Setting, value: Any, stored: Mapping[str, str], env: Mapping[str, str]) -> dict:
    variable = setting_variable(rule, declared.name)
    in_env = any(env.get(name, "").strip() for name in (variable, *declared.aliases))
    source = "runtime" if declared.name in stored else "environment" if in_env else "default"
    return {"name": declared.name, "variable": variable, "value": value, "default": declared.default,
            "source": source, "description": declared.description,
            **({"choices": list(declared.choices)} if declared.choices else {}),
            **({"minimum": declared.minimum} if declared.minimum is not None else {}),
            **({"maximum": declared.maximum} if declared.maximum is not None else {})}


def _enabled(stored: Mapping[str, str]) -> bool | None:
    value = stored.get("enabled")
    return None if value is None else value == "true"


def _declared(info: RuleInfo, name: str) -> Setting:
    """The setting a rule declares by that name, or the weight every rule has."""
    return next((s for s in info.settings if s.name == name), weight_setting(info))
