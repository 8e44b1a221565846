"""Every hook a rule plugin can implement. A rule is a module (or object) with these hooks.

A rule is registered through the ``tutor_quality.rules`` entry point group, the built-in
reschedule-rate rule included. Hook implementations may accept any subset of the arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pluggy

from engine.config import Settings
from engine.rulekit import Advice, Assessment, RuleInfo
from engine.windows import TutorHistory

PROJECT = "tutor_quality"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def describe_rule() -> RuleInfo:
    """Name, version, purpose and metric names of the rule; metric names are global, so prefix them."""


@hookspec
def assess_tutor(
    history: TutorHistory, as_of: dt.datetime, previously_flagged: Mapping[str, bool], settings: Settings
) -> Assessment:
    """Measure one tutor as of a moment and decide the flag; ``previously_flagged[rule]`` is the
    rule's flag on the day before, for hysteresis. Runs once per day of history: keep it cheap."""


@hookspec
def advise_tutor(
    history: TutorHistory, as_of: dt.datetime, assessments: Mapping[str, Assessment], settings: Settings
) -> Advice:
    """Insights and recommendations for the tutor's current assessment (``assessments`` by rule name)."""
