import datetime as dt

import pytest

from engine.config import Settings
from engine.hookspecs import hookimpl
from engine.ingest import ingest
from engine.queries import get_tutor_detail, list_tutors
from engine.registry import RuleLoadError, get_plugin_manager, loaded_rules, metric_names
from engine.rulekit import RuleInfo
from engine.services import Services
from tests.conftest import NOW
from tests.factories import raw_session
from tests.plugins import always_watch


def test_builtin_rule_loads_through_the_entry_point_group():
    rules = loaded_rules(get_plugin_manager(Settings()))
    assert [rule.info.name for rule in rules] == ["reschedule_rate"]
    assert "entry point" in rules[0].source and rules[0].module == "rules.reschedule_rate"


def test_tqs_rules_setting_restricts_what_loads():
    assert loaded_rules(get_plugin_manager(Settings(rules=frozenset({"nothing"})))) == []


def test_outside_plugin_registers_alongside_the_builtin():
    pm = get_plugin_manager(Settings(), extra_plugins=[always_watch])
    assert [rule.info.name for rule in loaded_rules(pm)] == ["recent_no_show", "reschedule_rate"]
    assert "registered directly" in loaded_rules(pm)[0].source
    assert "no_shows_7d" in metric_names(pm)


def test_misspelled_hook_fails_loudly():
    class Misspelled:
        @hookimpl
        def describe_rule(self):
            return RuleInfo("x", "1", "x", ())

        @hookimpl
        def asses_tutor(self):
            return None

    plugin = Misspelled()
    with pytest.raises(RuleLoadError, match="asses_tutor"):
        get_plugin_manager(Settings(), extra_plugins=[plugin], entry_points=False)


def test_plugin_without_describe_rule_is_rejected():
    class Nameless:
        @hookimpl
        def assess_tutor(self):
            return None

    plugin = Nameless()
    with pytest.raises(RuleLoadError, match="describe_rule"):
        get_plugin_manager(Settings(), extra_plugins=[plugin], entry_points=False)


def test_two_rules_with_one_name_are_rejected():
    class Twin:
        @hookimpl
        def describe_rule(self):
            return always_watch.RULE

    twin = Twin()
    with pytest.raises(RuleLoadError, match="recent_no_show"):
        get_plugin_manager(Settings(), extra_plugins=[always_watch, twin], entry_points=False)


def test_a_plugin_rule_flags_and_advises_without_engine_changes(database, settings):
    pm = get_plugin_manager(settings, extra_plugins=[always_watch])
    ingest(Services(settings, database, pm, clock=lambda: NOW), [raw_session("s1", "t1", NOW - dt.timedelta(days=1),
                                                                           "no_show")])
    with database.connection_context():
        detail = get_tutor_detail("t1", metric_names(pm))
        page = list_tutors(metric_names(pm), sort="-no_shows_7d")
    assert detail["flagged"] and detail["no_shows_7d"] == 1
    assert {flag["rule"]: flag["flagged"] for flag in detail["flags"]} == {
        "recent_no_show": True, "reschedule_rate": False}
    assert "Missed a session in the past 7 days" in detail["insights"]
    assert page.tutors[0]["no_shows_7d"] == 1


def test_a_plugins_real_valued_metric_is_not_rounded(database, settings):
    class AverageRating:
        @hookimpl
        def describe_rule(self):
            return RuleInfo("rating", "1", "average rating", ("avg_rating_30d",))

        @hookimpl
        def assess_tutor(self):
            from engine.rulekit import Assessment
            return Assessment(rule="rating", version="1", metrics={"avg_rating_30d": 4.6}, flagged=False)

    pm = get_plugin_manager(settings, extra_plugins=[AverageRating()])
    ingest(Services(settings, database, pm, clock=lambda: NOW), [raw_session("s1", "t1", NOW - dt.timedelta(days=1))])
    with database.connection_context():
        record = get_tutor_detail("t1", metric_names(pm))
    assert record["avg_rating_30d"] == 4.6 and record["sessions_7d"] == 1 and isinstance(record["sessions_7d"], int)
