"""A sample rule from outside the project: flags every tutor with a no-show in the last 7 days.

Registered in tests exactly as an installed plugin's module would be; it shows a rule
adding its own metric without any change to the engine, the read layer or the CLI.
"""

from engine.hookspecs import hookimpl
from engine.rulekit import Advice, Assessment, RuleInfo

RULE = RuleInfo(name="recent_no_show", version="0.1.0", description="Any no-show in the last 7 days",
                metrics=("no_shows_7d",), counts=("no_shows_7d",))


@hookimpl
def describe_rule():
    return RULE


@hookimpl
def assess_tutor(history, as_of):
    no_shows = history.window(7, as_of).no_shows
    return Assessment(rule=RULE.name, version=RULE.version, metrics={"no_shows_7d": no_shows},
                      flagged=no_shows > 0, severity="low" if no_shows else "none",
                      risk_score=min(100.0, 40.0 * no_shows), explanation={"no_shows_7d": no_shows})


@hookimpl
def advise_tutor(assessments):
    if assessments[RULE.name].flagged:
        return Advice(rule=RULE.name, insights=["Missed a session in the past 7 days"])
    return None
