"""GET /api/health, and what the API does when its database is down."""

import datetime as dt

from api.app import create_app
from engine.config import Settings
from engine.db import bind_database, open_database
from engine.plugin import Assessment, RuleInfo, hookimpl
from engine.queue import create_huey
from engine.registry import load_rules
from engine.services import Services
from engine.storing import store_sessions
from engine.tasks import register_tasks
from tests.conftest import NOW
from tests.factories import raw_session, session


def test_health_needs_no_key_and_reports_the_backlog(client):
    response = client.simulate_get("/api/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["database"]["ok"] and response.json["queue"]["ok"]
    assert response.json["backlog"] == {
        "pending": 0, "failed": 0, "oldest_pending_age_seconds": None,
        "rescore": {"tutors_waiting": 0, "oldest_waiting_seconds": None, "tutors_failing": 0},
        "emails": {"unsent": 0, "oldest_unsent_seconds": None, "failed": 0}}


def test_health_shows_tutors_stored_but_not_yet_rescored(client, database, rules, settings):
    stored_at = NOW - dt.timedelta(seconds=42)
    with database.connection_context():
        store_sessions(Services(settings, database, rules, clock=lambda: stored_at),
                       [session("s1", "t1", NOW - dt.timedelta(days=1)), session("s2", "t2", NOW)])
    backlog = client.simulate_get("/api/health").json["backlog"]
    assert backlog["pending"] == 0
    assert backlog["rescore"] == {"tutors_waiting": 2, "oldest_waiting_seconds": 42.0, "tutors_failing": 0}
    assert backlog["emails"] == {"unsent": 2, "oldest_unsent_seconds": 42.0, "failed": 0}  # sent after the rescore


def test_with_the_database_down_posts_are_503_with_retry_after(rules, tmp_path):
    from falcon import testing

    down = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    settings = Settings(data_dir=tmp_path, database_url=down, queue_url="memory://", api_keys=("k",))
    database = bind_database(open_database(down))
    services = Services(settings, database, rules, clock=lambda: NOW)
    app = create_app(services, register_tasks(create_huey("memory://"), services))
    client = testing.TestClient(app, headers={"Authorization": "Bearer k"})
    response = client.simulate_post("/api/sessions", json=raw_session("s1", "t1", NOW - dt.timedelta(days=1)))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json["error"]["title"] == "Database unavailable"
    assert client.simulate_get("/api/tutors").status_code == 503
    health = client.simulate_get("/api/health")
    assert health.status_code == 503 and health.json["database"]["ok"] is False


class BreaksForT2:
    @hookimpl
    def describe_rule(self):
        return RuleInfo("breaks_for_t2", "0.1", "raises for tutor t2")

    @hookimpl
    def assess_tutor(self, history):
        if history.tutor_id == "t2":
            raise ZeroDivisionError("division by zero")
        return Assessment({}, flagged=False)


class CannotDescribe:
    @hookimpl
    def describe_rule(self):
        raise ImportError("needs numpy 3")


def test_health_reports_each_rule_and_degrades_while_one_fails(database, database_url, settings, tmp_path):
    from tests.api.conftest import build_client
    rules = load_rules(settings, extra_plugins=[BreaksForT2(), CannotDescribe()])
    client = build_client(database, rules, database_url, tmp_path)
    health = client.simulate_get("/api/health").json
    assert health["status"] == "degraded"
    assert health["rules"]["reschedule_rate"] == {"status": "loaded", "version": "2.0.0"}
    assert health["rules"]["CannotDescribe"]["status"] == "failed"
    assert "ImportError: needs numpy 3" in health["rules"]["CannotDescribe"]["error"]

    response = client.simulate_post("/api/sessions", json=[raw_session("s1", "t1", NOW - dt.timedelta(days=1)),
                                                           raw_session("s2", "t2", NOW - dt.timedelta(days=1))])
    assert response.status_code == 202
    failing = client.simulate_get("/api/health").json["rules"]["breaks_for_t2"]
    assert failing["status"] == "loaded" and failing["failing"]["tutors"] == 1
    assert "ZeroDivisionError: division by zero" in failing["failing"]["last_error"]
    t2 = {flag["rule"]: flag for flag in client.simulate_get("/api/tutors/t2").json["flags"]}
    assert "breaks_for_t2" not in t2 and t2["reschedule_rate"]["stale"] is False  # never scored it: nothing kept
    assert client.simulate_get("/api/tutors/t1").json["sessions_7d"] == 1
