"""POST /api/sessions: accepted records are stored and scored; bad ones are refused whole."""

import datetime as dt

import pytest

from api.app import create_app
from engine.config import ConfigError, Settings
from engine.models import InboxItem, Session
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


def test_an_api_without_keys_refuses_to_start(database, rules, tmp_path):
    from engine.queue import create_huey
    from engine.services import Services
    from engine.tasks import register_tasks

    services = Services(Settings(data_dir=tmp_path), database, rules)
    with pytest.raises(ConfigError, match="TQS_API_KEYS"):
        create_app(services, register_tasks(create_huey("memory://"), services))


def test_unknown_fields_are_not_stored_however_deeply_nested(client, database):
    nested: object = 1
    for _ in range(500):  # far deeper than any real body; at about 900 the parser refuses with a 400
        nested = [nested]
    response = post(client, {**raw_session("s1", "t1", NOW - DAY), "extra": nested})
    assert response.status_code == 202
    with database.connection_context():
        assert "extra" not in InboxItem.get().payload
