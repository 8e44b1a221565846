"""PUT /api/rules/{name}: settings changed at runtime by an admin key only, checked like variables, audited, and
followed by a rescore whose flags name the change; GET /api/rules and /history show it."""

from __future__ import annotations

import datetime as dt

import pytest
from falcon import testing

from api.app import create_app
from engine.config import Settings
from engine.models import RiskEvent, RuleSettingValue, SettingsChange
from engine.queue import create_huey
from engine.services import LiveRules, Services
from engine.tasks import register_tasks
from tests.conftest import NOW
from tests.factories import raw_session

INGEST_KEY, ADMIN_KEY = "ingest-key", "admin-key-0123456789"


@pytest.fixture
def stack(database, database_url, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=database_url, queue_url="memory://",
                        api_keys=(INGEST_KEY,), admin_api_keys=(ADMIN_KEY,), email_policy="off")
    services = Services(settings, database, LiveRules(settings, database), clock=lambda: NOW)
    tasks = register_tasks(create_huey(settings.queue_url), services)
    return testing.TestClient(create_app(services, tasks), headers={"Authorization": f"Bearer {INGEST_KEY}"})


def as_admin(**kwargs):
    return {"headers": {"Authorization": f"Bearer {ADMIN_KEY}"}, **kwargs}


def put(client, name, body, key=ADMIN_KEY):
    return client.simulate_put(f"/api/rules/{name}", json=body, headers={"Authorization": f"Bearer {key}"})


def sessions(tutor_id, total, moved):
    """``total`` sessions over the last 20 days, ``moved`` of them rescheduled by the tutor."""
    return [raw_session(f"{tutor_id}-{i}", tutor_id, NOW - dt.timedelta(days=20 * (i + 1) / (total + 1)),
                        "rescheduled" if i < moved else "completed", "tutor" if i < moved else None)
            for i in range(total)]


def test_an_ingest_key_may_not_change_settings_and_nothing_is_stored(stack, database):
    response = put(stack, "reschedule_rate", {"settings": {"threshold": 12}, "reason": "try"}, key=INGEST_KEY)
    assert response.status_code == 403 and "admin scope" in response.json["error"]["message"]
    assert put(stack, "reschedule_rate", {"settings": {"threshold": 12}, "reason": "x"}, key="nope").status_code == 401
    with database.connection_context():
        assert RuleSettingValue.select().count() == 0 and SettingsChange.select().count() == 0


@pytest.mark.parametrize(("body", "status", "named"), [
    ({"settings": {"threshold": "twelve"}, "reason": "r"}, 400, "threshold='twelve': must be a number"),
    ({"settings": {"threshold": 150}, "reason": "r"}, 400, "threshold='150': must be at most 100"),
    ({"settings": {"clear_threshold": 20}, "reason": "r"}, 400, "clear_threshold (20) must not exceed threshold"),
    ({"settings": {"treshold": 12}, "reason": "r"}, 400, "'treshold' is not a setting of this rule"),
    ({"settings": {"flag_policy": "hunch"}, "reason": "r"}, 400, "must be one of rate, evidence"),
    ({"settings": {"threshold": 12}}, 400, "reason is required"),
    ({"settings": {"threshold": 12}, "reason": "  "}, 400, "reason is required"),
    ({"settings": {}, "reason": "r"}, 400, "settings must be an object"),
    ({"settings": {"threshold": [12]}, "reason": "r"}, 400, "settings.threshold must be a number"),
    ({"settings": {"threshold": 12}, "reason": "r", "who": "me"}, 400, "Unknown fields who"),
    ({"settings": {"enabled": "maybe"}, "reason": "r"}, 400, "enabled='maybe': must be true or false"),
])
def test_a_bad_change_is_refused_naming_what_is_wrong_and_nothing_is_stored(stack, database, body, status, named):
    response = put(stack, "reschedule_rate", body)
    assert response.status_code == status, response.text
    assert named in response.json["error"]["message"]
    with database.connection_context():
        assert RuleSettingValue.select().count() == 0 and SettingsChange.select().count() == 0


def test_an_unknown_rule_is_404(stack):
    assert put(stack, "no_such_rule", {"settings": {"threshold": 1}, "reason": "r"}).status_code == 404
    assert stack.simulate_get("/api/rules/no_such_rule/history").status_code == 404


def test_a_change_is_stored_audited_rescored_and_its_flags_say_so(stack, database):
    body = sessions("t1", 20, 3) + sessions("t2", 20, 1)  # 15% and 5%: neither above 15%
    assert stack.simulate_post("/api/sessions", json=body).status_code == 202
    tutor = stack.simulate_get("/api/tutors/t1").json
    assert tutor["flagged"] is False

    response = put(stack, "reschedule_rate", {"settings": {"threshold": 12, "clear_threshold": 10},
                                              "reason": "coaching capacity doubled", "changed_by": "alice"})
    assert response.status_code == 200, response.text
    assert [(c["setting"], c["old_value"], c["new_value"]) for c in response.json["changes"]] == [
        ("threshold", "15", "12"), ("clear_threshold", "12", "10")]
    assert response.json["rescore"]["status"] == "queued"  # immediate mode: it has run
    settings = {s["name"]: s for s in response.json["rule"]["settings"]}
    assert settings["threshold"]["value"] == 12.0 and settings["threshold"]["source"] == "runtime"
    assert settings["min_sessions"]["source"] == "default"

    assert stack.simulate_get("/api/tutors/t1").json["flagged"] is True
    assert stack.simulate_get("/api/tutors/t2").json["flagged"] is False
    with database.connection_context():
        raised = RiskEvent.get(RiskEvent.tutor == "t1", RiskEvent.kind == "raised")
    cause = raised.explanation["settings_change"]
    assert cause["changed_by"] == "alice (env-admin-1)" and ADMIN_KEY not in cause["changed_by"]
    assert cause["changes"] == {"threshold": ["15", "12"], "clear_threshold": ["12", "10"]}
    assert cause["reason"] == "coaching capacity doubled"

    trail = stack.simulate_get("/api/rules/reschedule_rate/history").json["changes"]
    assert [c["setting"] for c in trail] == ["clear_threshold", "threshold"]  # newest first
    assert trail[0]["reason"] == "coaching capacity doubled" and trail[0]["batch"] == trail[1]["batch"]
    assert trail[0]["rescore"]["total"] == 2 and trail[0]["rescore"]["done"] == 2
    assert trail[0]["rescore"]["finished_at"] is not None

    again = put(stack, "reschedule_rate", {"settings": {"threshold": 12}, "reason": "same again"})
    assert again.status_code == 200 and again.json["changes"] == [] and again.json["rescore"] is None


def test_disabling_a_rule_at_runtime_clears_its_flags_and_says_why(stack, database):
    stack.simulate_post("/api/sessions", json=sessions("t1", 20, 8))
    assert stack.simulate_get("/api/tutors/t1").json["flagged"] is True
    response = put(stack, "reschedule_rate", {"settings": {"enabled": False}, "reason": "rule under review"})
    assert response.status_code == 200 and response.json["rule"]["status"] == "disabled"
    assert stack.simulate_get("/api/tutors/t1").json["flagged"] is False
    with database.connection_context():
        cleared = RiskEvent.get(RiskEvent.tutor == "t1", RiskEvent.kind == "cleared")
    assert cleared.explanation["decision"] == "rule_disabled"
    assert cleared.explanation["settings_change"]["changes"] == {"enabled": ["true", "false"]}
    back = put(stack, "reschedule_rate", {"settings": {"enabled": True}, "reason": "review done"})
    assert back.json["rule"]["status"] == "loaded"
    assert stack.simulate_get("/api/tutors/t1").json["flagged"] is True
    rules = {r["name"]: r for r in stack.simulate_get("/api/rules").json["rules"]}
    assert rules["reschedule_rate"]["enabled_at_runtime"] is True
