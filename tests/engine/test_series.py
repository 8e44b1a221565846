"""The daily series in memory: one point per day, each rule seeing its own flag of the day before, and the
flags it raises and clears."""

import datetime as dt

from engine.config import Settings
from engine.plugin import Assessment, RuleInfo, hookimpl
from engine.registry import load_rules
from engine.series import compute_series, transitions
from engine.windows import SessionFact, end_of_day, history_in_memory, session_counts

NOW = dt.datetime(2026, 11, 25, 15, 30, tzinfo=dt.UTC)
TODAY = NOW.date()


class FlagsOnBusyDays:
    """Flags a day with two or more sessions that day; records what it was shown, for the test to read."""

    def __init__(self):
        self.seen: list[tuple[dt.datetime, bool]] = []

    @hookimpl
    def describe_rule(self):
        return RuleInfo("busy", "1", "two sessions in a day", ("sessions_1d",))

    @hookimpl
    def assess_tutor(self, history, as_of, was_flagged):
        self.seen.append((as_of, was_flagged))
        sessions = history.window(1, as_of).sessions
        if sessions > 5:
            raise ValueError("too busy to count")
        return Assessment({"sessions_1d": sessions}, flagged=sessions >= 2, severity="low",
                          explanation={"sessions": sessions})


def manager(rule):
    return load_rules(Settings(), extra_plugins=[rule])


def on(days_ago: int, hour: int = 10) -> SessionFact:
    moment = dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(hour), tzinfo=dt.UTC)
    return SessionFact(moment, session_counts("completed", None, None))


def test_one_point_per_day_past_days_at_their_end_today_as_of_now():
    rule = FlagsOnBusyDays()
    history = history_in_memory("t1", [on(3)])
    points = compute_series(manager(rule), history, TODAY - dt.timedelta(days=4), NOW, {}).points
    assert [p.day for p in points] == [TODAY - dt.timedelta(days=n) for n in (4, 3, 2, 1, 0)]
    assert [p.as_of for p in points[:-1]] == [end_of_day(p.day) for p in points[:-1]]
    assert points[-1].as_of == NOW
    assert [p.metrics["sessions_1d"] for p in points] == [0, 1, 0, 0, 0]


def test_each_day_sees_the_flag_of_the_day_before_and_transitions_name_the_days():
    rule = FlagsOnBusyDays()
    history = history_in_memory("t1", [on(3), on(3, 12), on(2), on(2, 14), on(1)])
    points = compute_series(manager(rule), history, TODAY - dt.timedelta(days=4), NOW,
                            {"busy": True}, only=frozenset({"busy"})).points
    assert [p.flagged for p in points] == [False, True, True, False, False]
    assert [previous for _, previous in rule.seen] == [True, False, True, True, False]
    found = transitions(points, {"busy": True})
    assert [(t.kind, t.day) for t in found] == [
        ("cleared", TODAY - dt.timedelta(days=4)), ("raised", TODAY - dt.timedelta(days=3)),
        ("cleared", TODAY - dt.timedelta(days=1))]
    assert found[1].explanation == {"sessions": 2, "rule_version": "1"}
    assert found[1].occurred_at == end_of_day(found[1].day)


def test_a_first_day_after_today_still_gives_todays_point():
    points = compute_series(manager(FlagsOnBusyDays()), history_in_memory("t1", []),
                            TODAY + dt.timedelta(days=3), NOW, {}).points
    assert [(p.day, p.as_of) for p in points] == [(TODAY, NOW)]
    assert transitions(points, {}) == []


def test_a_rule_that_raises_on_one_day_is_left_out_of_the_whole_series_and_the_others_still_score():
    rule = FlagsOnBusyDays()
    history = history_in_memory("t1", [on(2, hour) for hour in range(8, 15)] + [on(1)])
    series = compute_series(manager(rule), history, TODAY - dt.timedelta(days=3), NOW, {})
    assert list(series.failures) == ["busy"]
    assert "raised ValueError: too busy to count" in str(series.failures["busy"])
    assert all("busy" not in p.assessments for p in series.points)
    assert all(set(p.assessments) == {"first_session", "no_show_rate", "reschedule_rate"} for p in series.points)
    assert [p.metrics["sessions_7d"] for p in series.points] == [0, 7, 8, 8]
