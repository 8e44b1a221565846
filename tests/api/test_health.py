"""GET /api/health, and what the API does when its database is down."""

import datetime as dt

from api.app import create_app
from engine.config import Settings
from engine.db import bind_database, open_database
from engine.queue import create_huey
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


def test_health_shows_tutors_stored_but_not_yet_rescored(client, database, pm, settings):
    stored_at = NOW - dt.timedelta(seconds=42)
    with database.connection_context():
        store_sessions(Services(settings, database, pm, clock=lambda: stored_at),
                       [session("s1", "t1", NOW - dt.timedelta(days=1)), session("s2", "t2", NOW)])
    backlog = client.simulate_get("/api/health").json["backlog"]
    assert backlog["pending"] == 0
    assert backlog["rescore"] == {"tutors_waiting": 2, "oldest_waiting_seconds": 42.0, "tutors_failing": 0}
    assert backlog["emails"] == {"unsent": 2, "oldest_unsent_seconds": 42.0, "failed": 0}  # sent after the rescore


def test_with_the_database_down_posts_are_503_with_retry_after(pm, tmp_path):
    from falcon import testing

    down = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    settings = Settings(data_dir=tmp_path, database_url=down, queue_url="memory://", api_keys=("k",))
    database = bind_database(open_database(down))
    services = Services(settings, database, pm, clock=lambda: NOW)
    app = create_app(services, register_tasks(create_huey("memory://"), services))
    client = testing.TestClient(app, headers={"Authorization": "Bearer k"})
    response = client.simulate_post("/api/sessions", json=raw_session("s1", "t1", NOW - dt.timedelta(days=1)))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json["error"]["title"] == "Database unavailable"
    assert client.simulate_get("/api/tutors").status_code == 503
    health = client.simulate_get("/api/health")
    assert health.status_code == 503 and health.json["database"]["ok"] is False
