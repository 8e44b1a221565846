"""POST /api/sessions: accepted records are stored and scored; bad ones are refused whole."""

import datetime as dt

import pytest

from api.app import create_app
from engine.config import ConfigError, Settings
from engine.models import InboxItem, Session, Tutor
from tests.api.conftest import build_client
from tests.conftest import NOW
from tests.factories import raw_session

DAY = dt.timedelta(days=1)


def post(client, body, **kwargs):
    return client.simulate_post("/api/sessions", json=body, **kwargs)


def count(database, model):
    with database.connection_context():
        return model.select().count()


def test_one_session_is_accepted_stored_and_scored(client, database):
    response = post(client, raw_session("s1", "t1", NOW - DAY, "rescheduled", "tutor", tutor_name="Tia Moss"))
    assert response.status_code == 202
    assert response.json == {"accepted": 1, "session_ids": ["s1"]}
    tutor = client.simulate_get("/api/tutors/t1").json
    assert tutor["name"] == "Tia Moss" and tutor["sessions_7d"] == 1 and tutor["reschedule_rate_7d"] == 100.0
    with database.connection_context():
        assert InboxItem.get().status == "processed"


def test_an_array_is_accepted_and_reposting_updates_without_double_counting(client):
    sessions = [raw_session(f"s{i}", "t1", NOW - i * DAY) for i in range(5)]
    assert post(client, sessions).json["accepted"] == 5
    moved = raw_session("s0", "t1", NOW, "rescheduled", "tutor", reason="illness")
    assert post(client, [moved]).status_code == 202
    tutor = client.simulate_get("/api/tutors/t1").json
    assert tutor["sessions_7d"] == 5 and tutor["tutor_reschedules_7d"] == 1
    assert tutor["recent_reschedules"][0]["reason"] == "illness"


def test_optional_fields_are_kept_and_unknown_fields_ignored(client, database):
    raw = raw_session("s1", "t1", NOW - DAY, subject="Chemistry", duration_minutes=45, is_first_session=True,
                      student_name="Sam Lee", shoe_size=44)
    assert post(client, raw).status_code == 202
    with database.connection_context():
        stored = Session.get()
    assert (stored.subject, stored.duration_minutes, stored.is_first_session, stored.student_name) == (
        "Chemistry", 45, True, "Sam Lee")


def test_one_bad_record_rejects_the_whole_array_naming_index_and_field(client, database):
    good = raw_session("s1", "t1", NOW - DAY)
    bad = {**raw_session("s2", "t1", NOW - DAY), "status": "cancelled", "scheduled_time": "yesterday"}
    response = post(client, [good, bad, good])
    assert response.status_code == 400
    errors = response.json["error"]["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {(1, "status"), (1, "scheduled_time")}
    assert count(database, InboxItem) == 0 and count(database, Tutor) == 0


def test_a_single_object_error_has_no_index(client):
    response = post(client, {"tutor_id": "t1"})
    assert response.status_code == 400
    fields = {e["field"] for e in response.json["error"]["errors"]}
    assert fields == {"session_id", "student_id", "scheduled_time", "status"}
    assert all(e["index"] is None for e in response.json["error"]["errors"])


@pytest.mark.parametrize("body", [[], "a string", 42, [1, 2]])
def test_bodies_that_are_not_session_records_are_400(client, body):
    assert post(client, body).status_code == 400


def test_more_than_a_thousand_records_is_400(client):
    response = post(client, [raw_session(f"s{i}", "t1", NOW) for i in range(1001)])
    assert response.status_code == 400 and "1 to 1000" in response.json["error"]["errors"][0]["message"]


def test_overlong_text_is_400_naming_the_field(client):
    response = post(client, raw_session("s1", "t" * 129, NOW))
    assert response.status_code == 400
    assert response.json["error"]["errors"][0]["field"] == "tutor_id"


def test_malformed_json_is_400(client):
    response = client.simulate_post("/api/sessions", body=b'{"session_id": ', content_type="application/json")
    assert response.status_code == 400 and response.json["error"]["title"] == "Malformed JSON"


def test_non_json_content_type_is_415(client):
    response = client.simulate_post("/api/sessions", body=b"session_id=s1", content_type="text/plain")
    assert response.status_code == 415


def test_body_above_the_limit_is_413(database, pm, database_url, tmp_path):
    small = build_client(database, pm, database_url, tmp_path, max_body_bytes=1024)
    response = post(small, [raw_session(f"s{i}", "t1", NOW) for i in range(20)])
    assert response.status_code == 413 and response.json["error"]["status"] == 413


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic test-key"}])
def test_without_a_valid_key_is_401(client, headers):
    response = client.simulate_post("/api/sessions", json=raw_session("s1", "t1", NOW),
                                    headers={"Authorization": "", **headers})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_x_api_key_header_is_accepted(client):
    response = client.simulate_get("/api/tutors", headers={"Authorization": "", "X-API-Key": "test-key"})
    assert response.status_code == 200


def test_an_api_without_keys_refuses_to_start(database, pm, tmp_path):
    from engine.queue import create_huey
    from engine.services import Services
    from engine.tasks import register_tasks

    services = Services(Settings(data_dir=tmp_path), database, pm)
    with pytest.raises(ConfigError, match="TQS_API_KEYS"):
        create_app(services, register_tasks(create_huey("memory://"), services))


def test_unknown_fields_are_not_stored_however_deeply_nested(client, database):
    nested: object = 1
    for _ in range(950):
        nested = [nested]
    response = post(client, {**raw_session("s1", "t1", NOW - DAY), "extra": nested})
    assert response.status_code == 202
    with database.connection_context():
        assert "extra" not in InboxItem.get().payload
