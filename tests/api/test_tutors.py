"""GET /api/tutors, /api/tutors/{id}, /api/tutors/{id}/history."""

import datetime as dt

import pytest

from tests.conftest import NOW
from tests.factories import raw_session

DAY = dt.timedelta(days=1)


@pytest.fixture
def seeded(client):
    sessions = []
    for tutor_id, name, moved in (("t-ann", "Ann Byrne", 4), ("t-bo", "Bo Diaz", 0), ("t-cy", "Cy Park", 1)):
        sessions += [
            raw_session(f"{tutor_id}-{i}", tutor_id, NOW - (i + 1) * DAY,
                        "rescheduled" if i < moved else "completed", "tutor", tutor_name=name)
            for i in range(8)
        ]
    assert client.simulate_post("/api/sessions", json=sessions).status_code == 202
    return client


def test_list_has_tutor_records_and_a_total(seeded):
    body = seeded.simulate_get("/api/tutors").json
    assert body["total"] == 3
    assert {"tutor_id", "name", "sessions_30d", "reschedule_rate_90d", "flagged", "risk_score",
            "updated_at"} <= set(body["tutors"][0])
    assert body["tutors"][0]["tutor_id"] == "t-ann"  # highest risk first by default


def test_list_filters_searches_sorts_and_pages(seeded):
    assert [t["tutor_id"] for t in seeded.simulate_get("/api/tutors", params={"flagged": "true"}).json["tutors"]] \
        == ["t-ann"]
    assert [t["tutor_id"] for t in seeded.simulate_get("/api/tutors", params={"q": "diaz"}).json["tutors"]] == ["t-bo"]
    ordered = seeded.simulate_get("/api/tutors", params={"sort": "reschedule_rate_30d", "limit": 2, "offset": 1})
    assert [t["tutor_id"] for t in ordered.json["tutors"]] == ["t-cy", "t-ann"]
    assert ordered.json["total"] == 3


@pytest.mark.parametrize(("params", "named"), [
    ({"flagged": "maybe"}, "flagged"), ({"sort": "-shoe_size"}, "sort"), ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"), ({"offset": "-3"}, "offset"),
])
def test_bad_parameters_are_400_naming_them(seeded, params, named):
    response = seeded.simulate_get("/api/tutors", params=params)
    error = response.json["error"]
    assert response.status_code == 400 and error["title"] == "Invalid parameter"
    assert error["message"].startswith(f'The "{named}" parameter is invalid.')


def test_detail_has_flags_insights_recommendations_and_summary(seeded):
    detail = seeded.simulate_get("/api/tutors/t-ann").json
    flags = {flag["rule"]: flag for flag in detail["flags"]}
    assert detail["flagged"] and flags["reschedule_rate"]["explanation"]["events"] == 4
    assert detail["insights"] and detail["recommendations"]
    assert len(detail["recent_reschedules"]) == 4
    assert detail["session_summary"]["total"] == 8


def test_unknown_tutor_is_404_json(seeded):
    for path in ("/api/tutors/nobody", "/api/tutors/nobody/history"):
        response = seeded.simulate_get(path)
        assert response.status_code == 404 and response.json["error"]["title"] == "Unknown tutor"


def test_history_has_a_point_per_day_and_events(seeded):
    body = seeded.simulate_get("/api/tutors/t-ann/history", params={"days": 14}).json
    assert body["tutor_id"] == "t-ann" and len(body["points"]) == 14
    assert {"date", "flagged"} <= set(body["points"][-1])
    assert sum(1 for e in body["events"] if e["type"] == "reschedule") == 4
    too_few = seeded.simulate_get("/api/tutors/t-ann/history", params={"days": "0"})
    assert too_few.status_code == 400 and '"days"' in too_few.json["error"]["message"]
