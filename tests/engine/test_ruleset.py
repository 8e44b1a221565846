"""The engine owns a result's identity and checks it; rules are weighed into one risk score; one rule
can be recomputed alone after it changes, and a disabled rule's results go."""

import datetime as dt
import math

import pytest

from engine import queries
from engine.config import Settings
from engine.ingest import ingest
from engine.models import RiskEvent, ScoreSnapshot, Tutor, TutorScore
from engine.plugin import Advice, Assessment, RuleInfo, hookimpl
from engine.registry import load_rules
from engine.rescoring import rescore_all
from engine.ruleset import RuleError
from engine.services import Services
from engine.testing import completed, days, history, no_show
from tests.conftest import NOW
from tests.factories import raw_session


class Returns:
    """A rule that returns whatever the test hands it."""

    def __init__(self, result, name="returns", version="1.0"):
        self.result, self.name, self.version = result, name, version

    @hookimpl
    def describe_rule(self):
        return RuleInfo(self.name, self.version, "returns what it is given", ("returns_value",))

    @hookimpl
    def assess_tutor(self):
        return self.result

    @hookimpl
    def advise_tutor(self):
        return self.result if isinstance(self.result, Advice | str) else None


def assess_with(result):
    rules = load_rules(Settings(), extra_plugins=[Returns(result)], entry_points=False)
    return rules.assess("returns", history([completed(NOW - days(1))]), NOW, False)


def test_the_engine_fills_in_name_version_missing_metrics_and_the_version_in_the_explanation():
    checked = assess_with(Assessment({}, flagged=True, severity="low", risk_score=7, explanation={"why": "test"}))
    assert (checked.rule, checked.version) == ("returns", "1.0")
    assert checked.metrics == {"returns_value": None} and checked.risk_score == 7.0
    assert checked.explanation == {"why": "test", "rule_version": "1.0"}


@pytest.mark.parametrize(("result", "problem"), [
    (None, "returned NoneType from assess_tutor, not an Assessment"),
    (Assessment({"other_rules_metric": 1}, flagged=False), "returned undeclared metrics other_rules_metric"),
    (Assessment({"returns_value": math.nan}, flagged=False), "returns_value=nan: a metric is a finite number"),
    (Assessment({"returns_value": "12"}, flagged=False), "returns_value='12'"),
    (Assessment({}, flagged="yes"), "flagged='yes': it must be True or False"),
    (Assessment({}, flagged=True, severity="urgent"), "severity 'urgent': use one of none, low, medium, high"),
    (Assessment({}, flagged=True, risk_score=140), "risk_score=140: it must be a number from 0 to 100"),
    (Assessment({}, flagged=False, explanation={"when": dt.date(2026, 1, 1)}), "an explanation that is not JSON"),
    (Assessment({}, flagged=False, rule="reschedule_rate"), "labelled its result 'reschedule_rate'"),
])
def test_a_result_the_engine_cannot_use_is_an_error_naming_the_rule(result, problem):
    with pytest.raises(RuleError, match="rule 'returns' ") as caught:
        assess_with(result)
    assert problem in str(caught.value)


def test_advice_is_checked_too():
    rules = load_rules(Settings(), extra_plugins=[Returns("not advice")], entry_points=False)
    with pytest.raises(RuleError, match="rule 'returns' returned str from advise_tutor"):
        rules.advise("returns", history([]), NOW, {"returns": Assessment({}, flagged=False)})


def test_the_overall_risk_combines_rules_by_weight():
    rules = load_rules(Settings.from_env({"TQS_RULE_NO_SHOW_RATE_WEIGHT": "0.5", "TQS_RULE_FIRST_SESSION_WEIGHT": "0"}))
    assert rules.overall_risk({"reschedule_rate": 40.0}) == 40.0
    assert rules.overall_risk({"reschedule_rate": 40.0, "no_show_rate": 40.0}) == 52.0  # 1 - 0.6 x 0.8
    assert rules.overall_risk({"first_session": 90.0}) == 0.0  # weight 0 leaves it out of the score
    assert rules.overall_risk({"reschedule_rate": 100.0, "no_show_rate": 10.0}) == 100.0
    defaults = load_rules(Settings())
    assert defaults.overall_risk({"reschedule_rate": 40.0, "no_show_rate": 40.0}) == 68.8  # 1 - 0.6 x (1 - 1.2 x 0.4)


def sessions_of(tutor_id, count, no_shows):
    return [raw_session(f"{tutor_id}-{i}", tutor_id, NOW - dt.timedelta(days=1 + i / 2),
                        "no_show" if i < no_shows else "completed") for i in range(count)]


def test_a_tutors_risk_and_flag_come_from_every_rule(database, settings, services):
    ingest(services, sessions_of("t1", 20, 4))  # 20% no-shows: only the no-show rule flags
    with database.connection_context():
        detail = queries.get_tutor_detail("t1", services.metric_names)
        risks = {flag["rule"]: flag["risk_score"] for flag in detail["flags"]}
        flagged = {flag["rule"] for flag in detail["flags"] if flag["flagged"]}
    assert flagged == {"no_show_rate"} and detail["flagged"]
    assert detail["risk_score"] == services.rules.overall_risk(risks) > risks["no_show_rate"]


class Strict:
    """A rule whose second version is stricter: version 1 never flags, version 2 flags any no-show."""

    def __init__(self, version):
        self.version = version

    @hookimpl
    def describe_rule(self):
        return RuleInfo("strict", self.version, "no-shows, strictly", ("strict_no_shows_7d",),
                        ("strict_no_shows_7d",))

    @hookimpl
    def assess_tutor(self, history, as_of):
        missed = history.window(7, as_of).no_shows
        return Assessment({"strict_no_shows_7d": missed}, flagged=self.version == "2" and missed > 0,
                          explanation={"missed": missed})


def test_rescore_rule_recomputes_one_rules_history_and_leaves_the_others(database, settings):
    old = Services(settings, database, load_rules(settings, extra_plugins=[Strict("1")]), clock=lambda: NOW)
    ingest(old, sessions_of("t1", 20, 1) + sessions_of("t2", 20, 0))  # 5% no-shows: under 6%
    with database.connection_context():
        others_before = {(s.tutor_id, s.rule): s.as_of for s in TutorScore.select() if s.rule != "strict"}
        assert queries.stored_rule_versions()["strict"] == {"1": 2}
        assert not Tutor.get_by_id("t1").flagged
    later = NOW + dt.timedelta(hours=1)
    new = Services(settings, database, load_rules(settings, extra_plugins=[Strict("2")]), clock=lambda: later)
    assert rescore_all(new, only_rule="strict") == 2
    with database.connection_context():
        assert queries.stored_rule_versions()["strict"] == {"2": 2}
        assert {(s.tutor_id, s.rule): s.as_of for s in TutorScore.select() if s.rule != "strict"} == others_before
        assert Tutor.get_by_id("t1").flagged and not Tutor.get_by_id("t2").flagged
        raised = [e for e in RiskEvent.select() if e.rule == "strict"]
        assert [(e.tutor_id, e.kind) for e in raised] == [("t1", "raised")]
        assert raised[0].explanation["rule_version"] == "2"
        days = list(ScoreSnapshot.select().where(ScoreSnapshot.tutor == "t1").order_by(ScoreSnapshot.day))
        assert days[0].flags["strict"] is False and days[-1].flags["strict"] is True  # rewritten day by day
        assert set(days[-1].flags) >= {"reschedule_rate", "no_show_rate"}  # the other rules' flags kept


def test_a_disabled_rules_results_go_at_the_next_rescore(database, settings):
    ingest(Services(settings, database, load_rules(settings), clock=lambda: NOW), sessions_of("t1", 20, 4))
    without = Settings(data_dir=settings.data_dir, disabled_rules=frozenset({"no_show_rate"}))
    services = Services(without, database, load_rules(without), clock=lambda: NOW)
    with database.connection_context():
        assert Tutor.get_by_id("t1").flagged
        shown = queries.get_tutor_detail("t1", services.metric_names)
        assert "no_show_rate" not in {f["rule"] for f in shown["flags"]} and "no_show_rate_30d" not in shown
    rescore_all(services)
    with database.connection_context():
        assert not Tutor.get_by_id("t1").flagged
        assert not TutorScore.select().where(TutorScore.rule == "no_show_rate").exists()
        latest = ScoreSnapshot.select().where(ScoreSnapshot.tutor == "t1").order_by(ScoreSnapshot.day.desc()).first()
        assert "no_show_rate_30d" not in latest.metrics and "no_show_rate" not in latest.flags


def test_rule_testing_helpers_run_a_rule_as_the_engine_does():
    from engine.testing import run_rule
    from plugins import no_show as rule
    sessions = [completed(NOW - days(i)) for i in range(1, 19)] + [no_show(NOW - days(2)), no_show(NOW - days(40))]
    result = run_rule(rule, sessions, NOW)  # 2 of 20 in 90 days
    assert result.assessment.rule == "no_show_rate" and result.assessment.flagged
    assert result.settings.threshold == 6.0
    assert "1 no-show in the past 7 days" in result.advice.insights


def test_numpy_scalars_are_taken_as_the_numbers_they_hold_and_explanations_as_they_read_back():
    import numpy as np
    checked = assess_with(Assessment({"returns_value": np.float64(2.5)}, flagged=np.bool_(True),
                                     risk_score=np.int64(30), explanation={"window": (7, 30), 1: "one"}))
    assert checked.metrics == {"returns_value": 2.5} and type(checked.metrics["returns_value"]) is float
    assert checked.flagged is True and checked.risk_score == 30.0
    assert checked.explanation == {"window": [7, 30], "1": "one", "rule_version": "1.0"}


class Flaky:
    """Flags a tutor with a no-show in the past 7 days; raises while ``broken``."""

    broken = False

    @hookimpl
    def describe_rule(self):
        return RuleInfo("flaky", "1", "recent no-show", ("flaky_no_shows_7d",), ("flaky_no_shows_7d",))

    @hookimpl
    def assess_tutor(self, history, as_of):
        if Flaky.broken:
            raise RuntimeError("flaky bug")
        missed = history.window(7, as_of).no_shows
        return Assessment({"flaky_no_shows_7d": missed}, flagged=missed > 0)


def events_of(rule):
    return sorted((e.tutor_id, e.kind, e.day) for e in RiskEvent.select().where(RiskEvent.rule == rule))


def test_a_rule_that_recovers_computes_the_days_it_missed(database, settings):
    services = Services(settings, database, load_rules(settings, extra_plugins=[Flaky()]), clock=lambda: NOW)
    Flaky.broken = True
    ingest(services, [raw_session("old", "t1", NOW - dt.timedelta(days=5), "no_show")])
    with database.connection_context():
        assert events_of("flaky") == [] and queries.rule_failures()["flaky"]["tutors"] == 1
    Flaky.broken = False
    ingest(services, [raw_session("new", "t1", NOW - dt.timedelta(hours=1))])  # only today changed
    with database.connection_context():
        incremental = events_of("flaky")
        assert queries.rule_failures() == {}
    rescore_all(services, rebuild=True)
    with database.connection_context():
        assert incremental == events_of("flaky") and incremental[0][1] == "raised"
        assert incremental[0][2] == (NOW - dt.timedelta(days=5)).date()  # raised on the day, not when it recovered


def test_a_failing_rule_that_is_disabled_stops_counting_as_failing(database, settings):
    Flaky.broken = True
    services = Services(settings, database, load_rules(settings, extra_plugins=[Flaky()]), clock=lambda: NOW)
    ingest(services, [raw_session("s1", "t1", NOW - dt.timedelta(days=1))])
    Flaky.broken = False
    without = Services(settings, database, load_rules(settings), clock=lambda: NOW)
    with database.connection_context():
        assert "flaky" in queries.rule_failures()
    rescore_all(without)
    with database.connection_context():
        assert queries.rule_failures() == {}


def test_rescore_rule_leaves_the_other_rules_pending_work_waiting(database, settings, services):
    from engine.models import RescoreWaiting
    from engine.storing import store_sessions
    from tests.factories import session
    ingest(services, sessions_of("t1", 10, 0))
    with database.connection_context():
        through = Tutor.get_by_id("t1").series_through
        store_sessions(services, [session("late", "t1", NOW - dt.timedelta(days=20), "no_show")])  # not rescored
        assert RescoreWaiting.select().count() == 1
    rescore_all(services, only_rule="reschedule_rate")
    with database.connection_context():
        assert RescoreWaiting.select().count() == 1  # the other rules still have to see the late session
        assert Tutor.get_by_id("t1").series_through == through
    rescore_all(services)
    with database.connection_context():
        assert RescoreWaiting.select().count() == 0
        latest = ScoreSnapshot.select().where(ScoreSnapshot.tutor == "t1").order_by(ScoreSnapshot.day.desc()).first()
        assert latest.metrics["no_shows_30d"] == 1
