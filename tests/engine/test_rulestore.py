"""Settings changed at runtime (engine.rulestore): checked against what is stored, as every process will load
them; put back to the environment; named by the flags they cause, whichever rescore applies them first."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from engine.audit import history, stored_settings
from engine.config import Settings
from engine.ingest import ingest
from engine.models import RiskEvent, RuleSettingValue
from engine.rulestore import change_settings, claim_stalled_batches, rescore_after_change
from engine.services import LiveRules, Services
from tests.conftest import NOW
from tests.factories import raw_session


@pytest.fixture
def live(database, database_url, tmp_path):
    def make(**env) -> Services:
        settings = Settings.from_env({"TQS_DATABASE_URL": database_url, "TQS_DATA_DIR": str(tmp_path),
                                      "TQS_EMAIL_POLICY": "off", **env})
        return Services(settings, database, LiveRules(settings, database), clock=lambda: NOW)
    return make


def sessions(tutor_id, total, moved, days_back=20):
    return [raw_session(f"{tutor_id}-{i}", tutor_id, NOW - dt.timedelta(days=days_back * (i + 1) / (total + 1)),
                        "rescheduled" if i < moved else "completed", "tutor" if i < moved else None)
            for i in range(total)]


def test_a_setting_is_checked_against_the_stored_ones_not_only_the_environment(live, database):
    services = live()
    change_settings(services, "reschedule_rate", {"threshold": "13"}, "amy", "first")
    with pytest.raises(ValueError, match=r"clear_threshold \(14\) must not exceed threshold \(13\)"):
        change_settings(services, "reschedule_rate", {"clear_threshold": "14"}, "bo", "second")
    assert stored_settings(database) == {"reschedule_rate": {"threshold": "13"}}


def test_switching_on_a_rule_whose_variables_are_bad_is_refused_and_nothing_stored(live, database):
    services = live(TQS_DISABLED_RULES="no_show_rate", TQS_RULE_NO_SHOW_RATE_CLEAR_THRESHOLD="9")
    with pytest.raises(ValueError, match="clear_threshold"):
        change_settings(services, "no_show_rate", {"enabled": "true"}, "amy", "turn it on")
    assert stored_settings(database) == {} and history(database) == []
    assert "no_show_rate" not in services.refresh_rules().rules


def test_a_rule_switched_on_in_the_database_with_bad_variables_fails_alone(live, database):
    """Written behind the product's back (or variables changed since): the other rules still load and score."""
    with database.connection_context():
        RuleSettingValue.create(rule="no_show_rate", name="enabled", value="true", changed_at=NOW)
    services = live(TQS_DISABLED_RULES="no_show_rate", TQS_RULE_NO_SHOW_RATE_CLEAR_THRESHOLD="9")
    rules = services.refresh_rules()
    assert "reschedule_rate" in rules.rules and "no_show_rate" not in rules.rules
    assert "switched on at runtime" in rules.failed["no_show_rate"]


def test_a_failed_rule_can_be_switched_off(live, database):
    with database.connection_context():
        RuleSettingValue.create(rule="no_show_rate", name="enabled", value="true", changed_at=NOW)
    services = live(TQS_DISABLED_RULES="no_show_rate", TQS_RULE_NO_SHOW_RATE_CLEAR_THRESHOLD="9")
    made = change_settings(services, "no_show_rate", {"enabled": "false"}, "amy", "broken")
    assert [(c.name, c.old_value, c.new_value) for c in made] == [("enabled", "true", "false")]
    assert services.refresh_rules().failed == {}


def test_unset_puts_a_setting_back_to_the_environment_and_says_so(live, database):
    services = live(TQS_RULE_RESCHEDULE_RATE_THRESHOLD="20")
    change_settings(services, "reschedule_rate", {"threshold": "12.345678"}, "amy", "exact")
    assert services.refresh_rules().rules["reschedule_rate"].settings["threshold"] == 12.345678
    assert history(database)[0].new_value == "12.345678"  # stored and shown exactly
    made = change_settings(services, "reschedule_rate", {"threshold": None}, "amy", "back")
    assert [(c.old_value, c.new_value) for c in made] == [("12.345678", "20 (environment)")]
    assert stored_settings(database) == {}
    assert services.refresh_rules().rules["reschedule_rate"].settings["threshold"] == 20.0


def test_the_first_rescore_under_new_settings_names_the_change_whoever_runs_it(live, database):
    services = live()
    with database.connection_context():
        ingest(services, sessions("t1", 20, 3))  # 15%: not above 15%
    made = change_settings(services, "reschedule_rate", {"threshold": "12"}, "amy", "lower")
    later = dataclasses.replace(services, clock=lambda: NOW + dt.timedelta(hours=1))
    with database.connection_context():  # a new session is scored before the change's own rescore runs
        ingest(later, [raw_session("t1-new", "t1", NOW + dt.timedelta(minutes=30))])
        raised = RiskEvent.get(RiskEvent.tutor == "t1", RiskEvent.kind == "raised")
    assert raised.explanation["settings_change"]["id"] == made[0].batch
    rescore_after_change(later, made[0].batch)
    with database.connection_context():
        assert RiskEvent.select().where(RiskEvent.tutor == "t1").count() == 1  # written once, cause kept


def test_a_stalled_rescore_is_claimed_once(live, database):
    services = live()
    made = change_settings(services, "reschedule_rate", {"threshold": "12"}, "amy", "lower")
    soon, later = NOW + dt.timedelta(seconds=10), NOW + dt.timedelta(minutes=10)
    assert claim_stalled_batches(database, dt.timedelta(minutes=3), soon) == []  # not stalled yet
    assert claim_stalled_batches(database, dt.timedelta(minutes=3), later) == [made[0].batch]
    assert claim_stalled_batches(database, dt.timedelta(minutes=3), later) == []  # the first sweeper has it


def test_a_change_made_while_a_rule_is_off_is_checked_as_if_it_were_on(live, database):
    services = live()
    change_settings(services, "reschedule_rate", {"threshold": "18", "clear_threshold": "18"}, "amy", "stricter")
    with pytest.raises(ValueError, match="could never switch it on"):
        change_settings(services, "reschedule_rate", {"enabled": "false", "threshold": None}, "bo", "pause")
    assert stored_settings(database) == {"reschedule_rate": {"threshold": "18", "clear_threshold": "18"}}
    change_settings(services, "reschedule_rate", {"enabled": "false"}, "bo", "pause")  # alone, it is fine
    change_settings(services, "reschedule_rate", {"enabled": "true"}, "bo", "and back")  # and can come back


def test_stored_values_that_only_hold_together_are_loaded_together_in_any_order(live, database, caplog):
    with database.connection_context():  # clear_threshold sorts first, and exceeds the environment's threshold
        for name, value in (("clear_threshold", "18"), ("threshold", "20")):
            RuleSettingValue.create(rule="reschedule_rate", name=name, value=value, changed_at=NOW)
    services = live()
    settings = services.refresh_rules().rules["reschedule_rate"].settings
    assert (settings["threshold"], settings["clear_threshold"]) == (20, 18)
    assert "stored_setting_ignored" not in caplog.text
