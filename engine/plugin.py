"""Everything a rule plugin needs, in one import: ``from engine.plugin import hookimpl, Assessment, ...``.

This module is the plugin contract. What it exports keeps its meaning across minor versions;
anything else in the engine may change. See docs/writing-a-rule.md.
"""

from engine.hookspecs import hookimpl
from engine.raterule import assess_rate, check_rate_settings, rate_settings
from engine.rulekit import (
    SEVERITIES,
    Advice,
    Assessment,
    Rate,
    RuleInfo,
    RuleSettings,
    Setting,
    rate_metric_names,
    rate_metrics,
    rate_percent,
    wilson_interval,
)
from engine.windows import WINDOW_DAYS, Counts, RescheduleFact, SessionFact, TutorHistory, day_of

__all__ = [
    "SEVERITIES",
    "WINDOW_DAYS",
    "Advice",
    "Assessment",
    "Counts",
    "Rate",
    "RescheduleFact",
    "RuleInfo",
    "RuleSettings",
    "SessionFact",
    "Setting",
    "TutorHistory",
    "assess_rate",
    "check_rate_settings",
    "day_of",
    "hookimpl",
    "rate_metric_names",
    "rate_metrics",
    "rate_percent",
    "rate_settings",
    "wilson_interval",
]
