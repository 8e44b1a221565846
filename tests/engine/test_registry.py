"""Loading rules: entry points, choosing with TQS_RULES / TQS_DISABLED_RULES, per-rule settings, and
isolation of a rule that cannot load."""

import pytest

from engine.config import ConfigError, Settings
from engine.plugin import Assessment, RuleInfo, Setting, hookimpl
from engine.registry import load_rules
from tests.support.outside_rule import MODULE

BUILT_IN = ["reschedule_rate", "no_show_rate", "first_session"]  # by rank, then name


def statuses(rules):
    return {s.name: s.status for s in rules.statuses}


def test_the_three_rules_load_through_the_entry_point_group():
    rules = load_rules(Settings())
    assert list(rules.names) == BUILT_IN
    assert all("tutor-quality" in rules.rules[name].source for name in BUILT_IN)
    assert rules.rules["no_show_rate"].module == "plugins.no_show"


def test_tqs_rules_chooses_and_tqs_disabled_rules_leaves_out():
    only = load_rules(Settings(rules=frozenset({"no_show_rate"})))
    assert only.names == ("no_show_rate",)
    assert statuses(only) == {"first_session": "disabled", "no_show_rate": "loaded", "reschedule_rate": "disabled"}
    without = load_rules(Settings(disabled_rules=frozenset({"first_session"})))
    assert without.names == ("reschedule_rate", "no_show_rate")
    assert "first_sessions_30d" not in without.metric_names and "no_show_rate_30d" in without.metric_names


@pytest.mark.parametrize("variable", ["TQS_RULES", "TQS_DISABLED_RULES"])
def test_naming_a_rule_that_is_not_installed_is_a_configuration_error(variable):
    with pytest.raises(ConfigError, match=f"{variable} names no_such_rule.*installed: first_session"):
        load_rules(Settings.from_env({variable: "reschedule_rate,no_such_rule"}))


def test_rule_settings_come_from_their_own_variables_and_are_validated():
    rules = load_rules(Settings.from_env({"TQS_RULE_NO_SHOW_RATE_THRESHOLD": "8", "TQS_RULE_NO_SHOW_RATE_WEIGHT": "2"}))
    assert rules.rules["no_show_rate"].settings.threshold == 8.0
    assert rules.rules["no_show_rate"].weight == 2.0
    assert rules.rules["reschedule_rate"].settings.threshold == 15.0
    with pytest.raises(ConfigError, match="TQS_RULE_NO_SHOW_RATE_THRESHOLD='lots': must be a number"):
        load_rules(Settings.from_env({"TQS_RULE_NO_SHOW_RATE_THRESHOLD": "lots"}))
    with pytest.raises(ConfigError, match="TQS_RULE_FIRST_SESSION_WINDOW_DAYS='14': must be one of 7, 30, 90"):
        load_rules(Settings.from_env({"TQS_RULE_FIRST_SESSION_WINDOW_DAYS": "14"}))
    with pytest.raises(ConfigError, match="clear_threshold \\(9\\) must not exceed threshold \\(8\\)"):
        load_rules(Settings.from_env({"TQS_RULE_NO_SHOW_RATE_THRESHOLD": "8",
                                      "TQS_RULE_NO_SHOW_RATE_CLEAR_THRESHOLD": "9"}))


def test_a_misspelled_rule_variable_is_an_error_naming_the_real_ones():
    with pytest.raises(ConfigError, match="TQS_RULE_NO_SHOW_RATE_TRESHOLD is not a setting of rule 'no_show_rate'; "
                                          "its settings are TQS_RULE_NO_SHOW_RATE_THRESHOLD"):
        load_rules(Settings.from_env({"TQS_RULE_NO_SHOW_RATE_TRESHOLD": "8"}))
    with pytest.raises(ConfigError, match="TQS_RULE_NOSHOW_THRESHOLD names no installed rule"):
        load_rules(Settings.from_env({"TQS_RULE_NOSHOW_THRESHOLD": "8"}))
    disabled = Settings.from_env({"TQS_DISABLED_RULES": "no_show_rate", "TQS_RULE_NO_SHOW_RATE_THRESHOLD": "8"})
    assert "no_show_rate" not in load_rules(disabled).names  # a disabled rule's settings wait for it


def test_the_reschedule_rule_keeps_its_documented_variables():
    rules = load_rules(Settings.from_env({"TQS_RESCHEDULE_THRESHOLD": "20", "TQS_PRIMARY_WINDOW_DAYS": "7"}))
    settings = rules.rules["reschedule_rate"].settings
    assert (settings.threshold, settings.window_days) == (20.0, 7)
    with pytest.raises(ConfigError, match="TQS_RULE_RESCHEDULE_RATE_THRESHOLD and TQS_RESCHEDULE_THRESHOLD disagree"):
        load_rules(Settings.from_env({"TQS_RESCHEDULE_THRESHOLD": "20", "TQS_RULE_RESCHEDULE_RATE_THRESHOLD": "25"}))
    same = load_rules(Settings.from_env({"TQS_RESCHEDULE_THRESHOLD": "20",
                                         "TQS_RULE_RESCHEDULE_RATE_THRESHOLD": "20.0"}))
    assert same.rules["reschedule_rate"].settings.threshold == 20.0  # the same value written two ways agrees
    with pytest.raises(ConfigError, match="TQS_RULE_RESCHEDULE_RATE_MIN_SESSIONS='1_5': must be a whole number"):
        load_rules(Settings.from_env({"TQS_RULE_RESCHEDULE_RATE_MIN_SESSIONS": "1_5"}))
    with pytest.raises(ConfigError, match="TQS_CLEAR_THRESHOLD"):  # the old variable named in the error
        load_rules(Settings.from_env({"TQS_CLEAR_THRESHOLD": "120"}))


class Valid:
    @hookimpl
    def describe_rule(self):
        return RuleInfo("valid", "1", "always fine", ("valid_count",), ("valid_count",),
                        settings=(Setting("max_count", 3, "x"),))

    @hookimpl
    def assess_tutor(self, history, as_of):
        return Assessment({"valid_count": history.window(7, as_of).sessions}, flagged=False)


class Misspelled:
    @hookimpl
    def describe_rule(self):
        return RuleInfo("misspelled", "1", "x")

    @hookimpl
    def asses_tutor(self):
        return None


class Nameless:
    @hookimpl
    def assess_tutor(self):
        return None


class Scores:
    """Every test rule scores, so what is wrong with it is the one thing under test."""

    @hookimpl
    def assess_tutor(self):
        return Assessment({}, flagged=False)


class Clashing(Scores):
    @hookimpl
    def describe_rule(self):
        return RuleInfo("clashing", "1", "takes another rule's metric", ("valid_count",))


class BadDefault(Scores):
    @hookimpl
    def describe_rule(self):
        return RuleInfo("bad_default", "1", "x", settings=(Setting("limit", 500, "x", maximum=100),))


class Exploding(Scores):
    @hookimpl
    def describe_rule(self):
        raise RuntimeError("cannot read my model file")


class DoesNotScore:
    @hookimpl
    def describe_rule(self):
        return RuleInfo("does_not_score", "1", "x")


class Wraps(Scores):
    @hookimpl
    def describe_rule(self):
        return RuleInfo("wraps", "1", "x")

    @hookimpl(wrapper=True)
    def advise_tutor(self):
        return (yield)


class Defaults:
    @hookimpl
    def describe_rule(self):
        return RuleInfo("defaults", "1", "x")

    @hookimpl
    def assess_tutor(self, history, settings=None):
        return Assessment({}, flagged=False)


class SameVariables(Scores):
    """Rule ``valid_max`` with setting ``count`` is TQS_RULE_VALID_MAX_COUNT, as is ``valid``'s ``max_count``."""

    @hookimpl
    def describe_rule(self):
        return RuleInfo("valid_max", "1", "x", settings=(Setting("count", 1, "x"),))


class BrokenCheck(Scores):
    @hookimpl
    def describe_rule(self):
        return RuleInfo("broken_check", "1", "x", settings=(Setting("limit", 1, "x"),))

    @hookimpl
    def check_settings(self, settings):
        return settings.limti  # a typo: AttributeError, not a complaint about the values


class LongVersion(Scores):
    @hookimpl
    def describe_rule(self):
        return RuleInfo("long_version", "1.0.0+" + "x" * 40, "x")


@pytest.mark.parametrize(("plugin", "name", "error"), [
    (Misspelled(), "misspelled", "asses_tutor"),
    (Nameless(), "Nameless", "does not implement describe_rule"),
    (Clashing(), "clashing", "metric 'valid_count' is already produced by valid"),
    (BadDefault(), "bad_default", "the default of setting 'limit' must be at most 100"),
    (Exploding(), "Exploding", "RuntimeError: cannot read my model file"),
    (DoesNotScore(), "does_not_score", "does not implement assess_tutor"),
    (Wraps(), "wraps", "advise_tutor must be a plain hook, not a wrapper"),
    (Defaults(), "defaults", "assess_tutor's parameters settings must not have defaults"),
    (SameVariables(), "valid_max", "its variables TQS_RULE_VALID_MAX_COUNT are another rule's"),
    (BrokenCheck(), "broken_check", "AttributeError: no setting 'limti'"),
    (LongVersion(), "long_version", "a version string of 1 to 32 characters"),
])
def test_a_rule_that_cannot_load_is_skipped_and_says_why(plugin, name, error, caplog):
    rules = load_rules(Settings(), extra_plugins=[Valid(), plugin])
    assert "valid" in rules.names and name not in rules.names
    assert set(BUILT_IN) <= set(rules.names)
    assert error in rules.failed[name]
    assert f"event=rule_failed_to_load rule={name}" in caplog.text


def test_a_second_rule_with_a_taken_name_is_the_one_refused():
    rules = load_rules(Settings(), extra_plugins=[Valid(), Valid()], entry_points=False)
    assert rules.names == ("valid",) and rules.failed == {}  # the loaded one's results are not stale
    refused = [s for s in rules.statuses if s.status == "failed"]
    assert len(refused) == 1 and "already called 'valid'" in refused[0].error


def test_an_outside_package_loads_from_its_entry_point(outside_rule):
    rules = load_rules(Settings.from_env({"TQS_RULE_BUSY_WEEK_MAX_SESSIONS": "12"}))
    assert "busy_week" in rules.names
    loaded = rules.rules["busy_week"]
    assert loaded.module == MODULE and loaded.source == "tq-busy-week 0.3.0 (entry point)"
    assert loaded.settings.max_sessions == 12 and loaded.weight == 0.5
    assert "busy_week_sessions" in rules.metric_names
