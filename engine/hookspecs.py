"""Every hook a rule plugin can implement. A rule is a module (or object) with these hooks.

A rule is registered through the ``tutor_quality.rules`` entry point group, the built-in
reschedule-rate rule included. Hook implementations may accept any subset of the arguments.
The engine calls each rule's hooks on their own, so a rule sees only its own settings and
flag, and one rule's failure does not stop the others (see docs/plugins.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pluggy

from engine.rulekit import Advice, Assessment, RuleInfo, RuleSettings
from engine.windows import TutorHistory

PROJECT = "tutor_quality"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def describe_rule() -> RuleInfo:
    """Name, version, purpose, metric names and settings of the rule; metric names are global, so prefix them."""


@hookspec
def check_settings(settings: RuleSettings) -> None:
    """Raise ``ValueError`` when the rule's settings, each valid alone, do not fit together."""


@hookspec
def assess_tutor(history: TutorHistory, as_of: dt.datetime, was_flagged: bool, settings: RuleSettings) -> Assessment:
    """Measure one tutor as of a moment and decide the flag; ``was_flagged`` is this rule's flag on the
    day before, for hysteresis. Runs once per day of history: keep it cheap."""


@hookspec
def advise_tutor(
    history: TutorHistory,
    as_of: dt.datetime,
    assessment: Assessment,
    assessments: Mapping[str, Assessment],
    settings: RuleSettings,
) -> Advice | None:
    """Insights and recommendations for this rule's current ``assessment`` (every rule's in ``assessments``)."""
