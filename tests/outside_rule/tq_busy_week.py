"""A rule from outside the project: flags a tutor booked for more sessions in 7 days than is sustainable.

Overbooked tutors are the ones who start moving and missing sessions; this rule is the
whole of what a third party writes: one import, a description with one setting, an
assessment and advice.
"""

from engine.plugin import Advice, Assessment, RuleInfo, Setting, hookimpl

RULE = RuleInfo(
    name="busy_week",
    version="0.3.0",
    description="More sessions in the past 7 days than a tutor can sustain",
    metrics=("busy_week_sessions",),
    counts=("busy_week_sessions",),
    settings=(Setting("max_sessions", 25, "flag above this many sessions in 7 days", minimum=1),),
    weight=0.5,
)


@hookimpl
def describe_rule():
    return RULE


@hookimpl
def assess_tutor(history, as_of, settings):
    sessions = history.window(7, as_of).sessions
    over = sessions > settings.max_sessions
    return Assessment(
        metrics={"busy_week_sessions": sessions},
        flagged=over,
        severity="medium" if over else "none",
        risk_score=min(100.0, 100.0 * sessions / (2 * settings.max_sessions)) if over else 0.0,
        explanation={"decision": "overbooked" if over else "sustainable", "sessions": sessions, "window_days": 7,
                     "max_sessions": settings.max_sessions},
    )


@hookimpl
def advise_tutor(assessment, settings):
    if not assessment.flagged:
        return None
    sessions = assessment.metrics["busy_week_sessions"]
    return Advice(insights=[f"Booked for {sessions} sessions in the past 7 days (more than {settings.max_sessions})"],
                  recommendations=["Cap the tutor's weekly bookings before they start missing sessions"])
