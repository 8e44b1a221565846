"""The OpenAPI document at GET /api/openapi.json describes what the live app really does.

Schemathesis loads the document from the app itself and drives every documented operation with
generated requests, valid and invalid, checking each answer: never a 5xx, only documented status
codes and content types, bodies that match the response schemas. Examples per operation are bounded
and generation is derandomized, so CI sees the same requests every run (about 20 s on SQLite).

The targeted tests after it cover what generated requests rarely reach: oversized, mistyped, deeply
nested or non-standard JSON, text no database can store, all-or-nothing batches and the API key.
"""

from __future__ import annotations

import datetime as dt
import json

import hypothesis.strategies as st
import pytest
import schemathesis
from falcon import testing
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from engine.config import Settings
from engine.db import bind_database, release_connections
from engine.migrations import migrate
from engine.models import InboxItem
from engine.queries import MAX_OFFSET
from engine.queue import create_huey
from engine.services import build_services
from engine.tasks import register_tasks
from engine.validation import UNSTORABLE
from tests.api.conftest import build_client
from tests.conftest import NOW
from tests.factories import raw_session

API_KEY = "test-key"
AUTH = {"X-API-Key": API_KEY}
ADMIN_KEY = "admin-test-key"
ADMIN = {"X-API-Key": ADMIN_KEY}  # settings changes are fuzzed too: every answer documented, never a 5xx
DAY = dt.timedelta(days=1)
SEEDED_TUTORS = ("t-ada", "t-bo", "t-cy")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = schemathesis.Config.from_dict({
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large", "large_base_example"],
    "headers": AUTH,
    "generation": {
        "max-examples": 40,  # per operation, in the fuzzing phase; the coverage phase adds its own boundary cases
        "deterministic": True,
        "database": "none",  # no .hypothesis replay directory: every run is the same
        "with-security-parameters": False,  # the key is sent on every call; 401s are tested below
    },
    "phases": {"stateful": {"enabled": False}},
})


def seed_sessions() -> list[dict]:
    """Six sessions for each seeded tutor, n of them rescheduled by the tutor (so one of them is flagged)."""
    sessions = []
    for n, tutor_id in enumerate(SEEDED_TUTORS):
        for i in range(6):
            kind = ("rescheduled", "tutor") if i < 2 * n else ("completed", None)
            sessions.append(raw_session(f"{tutor_id}-s{i}", tutor_id, NOW - (i + 1) * DAY, *kind,
                                        tutor_name=f"Tutor {tutor_id}", duration_minutes=50))
    return sessions


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The app on a file SQLite database with Huey in immediate mode, and a few tutors already scored."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"), queue_url="memory://", api_keys=(API_KEY,),
                        admin_api_keys=(ADMIN_KEY,))
    services = build_services(settings).at(NOW)
    migrate(services.database)
    app = create_app(services, register_tasks(create_huey(settings.queue_url), services))
    seeded = testing.TestClient(app, headers=AUTH).simulate_post("/api/sessions", json=seed_sessions())
    assert seeded.status_code == 202, seeded.text
    yield app, services
    release_connections(services.database)


@pytest.fixture(autouse=True)
def bound(stack):
    """The models are bound process-wide; point them back at this module's database before each test."""
    bind_database(stack[1].database)


@pytest.fixture
def client(stack) -> testing.TestClient:
    return testing.TestClient(stack[0], headers=AUTH)


@pytest.fixture
def anonymous(stack) -> testing.TestClient:
    return testing.TestClient(stack[0])


# --- schemathesis against the live app --------------------------------------------------------------


def accepted_session(record: dict, days_ago: int) -> dict:
    """A generated record made acceptable: storable ids, real datetimes, reschedule info iff rescheduled."""
    fixed = {key: UNSTORABLE.sub("", value) if isinstance(value, str) else value for key, value in record.items()
             if isinstance(key, str) and not UNSTORABLE.search(key) and not isinstance(value, dict | list)}
    for key in ("session_id", "tutor_id", "student_id"):
        fixed[key] = str(fixed.get(key) or "").strip() or f"generated-{key}"
    when = NOW - days_ago * DAY
    fixed.update(scheduled_time=when.isoformat(), completed_time=None,
                 status=fixed.get("status") if fixed.get("status") in ("completed", "no_show") else "rescheduled")
    fixed["reschedule_info"] = None
    if fixed["status"] == "rescheduled":
        fixed["reschedule_info"] = {"initiator": "tutor", "reason": "generated", "new_time": (when + DAY).isoformat()}
    return fixed


def some_accepted(body):
    """Generated session bodies are nearly always refused (random datetimes); make some of them acceptable."""
    if isinstance(body, dict):
        return st.one_of(st.just(body), st.integers(0, 100).map(lambda days: accepted_session(body, days)))
    if isinstance(body, list) and body and all(isinstance(item, dict) for item in body):
        fixed = st.integers(0, 100).map(lambda days: [accepted_session(item, days) for item in body])
        return st.one_of(st.just(body), fixed)
    return st.just(body)


@pytest.fixture(scope="module")
def api_schema(stack):
    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", stack[0], config=CONFIG)

    @loaded.hook
    def flatmap_path_parameters(context, path_parameters):
        # now and then ask for a tutor that exists, so 200 bodies are checked as well as 404s
        if not isinstance(path_parameters, dict) or "tutor_id" not in path_parameters:
            return st.just(path_parameters)
        known = st.sampled_from(SEEDED_TUTORS).map(lambda tutor_id: {**path_parameters, "tutor_id": tutor_id})
        return st.one_of(st.just(path_parameters), known)

    @loaded.hook
    def flatmap_body(context, body):
        return some_accepted(body) if context.operation.path == "/api/sessions" else st.just(body)

    return loaded


@pytest.fixture
def nodeid_shim(request):
    """schemathesis 4.32 lazy schemas read ``node._nodeid``, which pytest 9.2 no longer has; give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@pytest.mark.usefixtures("nodeid_shim")
def test_the_app_conforms_to_its_openapi_document(case):
    case.call_and_validate(headers=ADMIN if case.method.upper() == "PUT" else AUTH, checks=CHECKS)


def test_every_route_is_documented(api_schema, anonymous):
    documented = {(operation.method.upper(), operation.path)
                  for operation in (result.ok() for result in api_schema.get_all_operations())}
    assert documented == {("POST", "/api/sessions"), ("GET", "/api/tutors"), ("GET", "/api/tutors/{tutor_id}"),
                          ("GET", "/api/tutors/{tutor_id}/history"), ("GET", "/api/health"),
                          ("GET", "/api/rules"), ("GET", "/api/rules/{name}"), ("PUT", "/api/rules/{name}"),
                          ("GET", "/api/rules/{name}/history")}


# --- what generated requests rarely reach -----------------------------------------------------------


def total_tutors(client) -> int:
    response = client.simulate_get("/api/tutors")
    assert response.status_code == 200
    return response.json["total"]


def assert_error(response, status: int) -> dict:
    """The documented error shape: JSON, ``{"error": {"status", "title", "message"}}``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json["error"]
    assert error["status"] == status and error["title"] and error["message"]
    return error


def post_raw(client, body: bytes, content_type: str = "application/json"):
    return client.simulate_post("/api/sessions", body=body, headers={"Content-Type": content_type})


def test_a_body_above_the_size_limit_is_413_json(client, stack):
    limit = stack[1].settings.max_body_bytes
    body = json.dumps([raw_session("big", "t-big", NOW, subject="x" * 150)] * (limit // 200 + 1)).encode()
    assert len(body) > limit
    assert str(limit) in assert_error(post_raw(client, body), 413)["message"]
    declared_only = client.simulate_post("/api/sessions", body=b"[]", headers={
        "Content-Type": "application/json", "Content-Length": str(limit + 1)})
    assert_error(declared_only, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonp",
                                          "multipart/form-data; boundary=x", None])
def test_a_body_that_is_not_declared_json_is_415(client, content_type):
    body = json.dumps(raw_session("s-ct", "t-ct", NOW)).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    assert_error(client.simulate_post("/api/sessions", body=body, headers=headers), 415)


def test_json_content_type_parameters_are_accepted(client):
    body = json.dumps(raw_session("s-charset", "t-charset", NOW - DAY)).encode()
    assert post_raw(client, body, "Application/JSON; charset=utf-8").status_code == 202


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"[" * 100_000,
], ids=["nested-arrays", "nested-objects", "unclosed-arrays"])
def test_deeply_nested_json_is_400_not_500(client, body):
    assert assert_error(post_raw(client, body), 400)["title"] == "Malformed JSON"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_400(client, literal):
    record = json.dumps(raw_session("s-nan", "t-nan", NOW, duration_minutes=1))
    for body in (record.replace('"duration_minutes": 1', f'"duration_minutes": {literal}'),
                 record.replace('"s-nan"', literal), f"[{literal}]"):
        assert literal in body
        assert assert_error(post_raw(client, body.encode()), 400)["title"] == "Malformed JSON"


@pytest.mark.parametrize("body", [b"", b"   ", b'{"session_id": ', b"\xff\xfe\xfa", b'{"a": 1} {"b": 2}'],
                         ids=["empty", "blank", "truncated", "not-utf8", "two-documents"])
def test_malformed_bodies_are_400(client, body):
    assert assert_error(post_raw(client, body), 400)["title"] == "Malformed JSON"


def test_one_bad_record_among_good_ones_rejects_the_batch_naming_its_index(client):
    before = total_tutors(client)
    good = [raw_session(f"batch-{i}", f"t-batch-{i}", NOW - DAY) for i in range(5)]
    bad = {**raw_session("batch-bad", "t-batch-bad", NOW - DAY), "status": "cancelled", "scheduled_time": "yesterday"}
    error = assert_error(client.simulate_post("/api/sessions", json=[*good[:3], bad, *good[3:]]), 400)
    assert {(e["index"], e["field"]) for e in error["errors"]} == {(3, "status"), (3, "scheduled_time")}
    assert total_tutors(client) == before
    assert client.simulate_get("/api/tutors", params={"q": "t-batch-"}).json["total"] == 0


UNSTORABLE_TEXT = {  # name: (text replaced, replacement, the field named in the 400)
    "nul-in-id": ('"tutor_id": "t-nul"', '"tutor_id": "t-\\u0000"', "tutor_id"),
    "nul-in-name": ('"tutor_name": "Nul"', '"tutor_name": "N\\u0000l"', "tutor_name"),
    "lone-surrogate-in-id": ('"session_id": "s-nul"', '"session_id": "s-\\ud800"', "session_id"),
    "lone-surrogate-in-reason": ('"reason": "personal"', '"reason": "\\udfff"', "reschedule_info.reason"),
}


def unstorable_bodies() -> dict[str, tuple[bytes, str]]:
    record = json.dumps([raw_session("s-nul", "t-nul", NOW - DAY, "rescheduled", "tutor", tutor_name="Nul")])
    assert all(old in record for old, _, _ in UNSTORABLE_TEXT.values())
    bodies = {name: (record.replace(old, new, 1).encode(), field)
              for name, (old, new, field) in UNSTORABLE_TEXT.items()}
    bodies["raw-surrogate-bytes"] = (record.replace("Nul", "N\udc80l").encode("utf-8", "surrogatepass"), "tutor_name")
    return bodies


def test_text_no_database_can_store_is_400_on_every_database(database, rules, database_url, tmp_path):
    """NUL and lone surrogates: Postgres refused the former (a 500, or a 202 then a row that never scores),
    both drivers the latter. Refused up front now; paths and queries holding NUL find nothing."""
    client = build_client(database, rules, database_url, tmp_path)
    for name, (body, field) in unstorable_bodies().items():
        error = assert_error(post_raw(client, body), 400)
        assert [(e["index"], e["field"]) for e in error["errors"]] == [(0, field)], name
    ignored = json.dumps([{**raw_session("s-key", "t-key", NOW - DAY), "x\u0000": 1}]).encode()
    assert post_raw(client, ignored).status_code == 202  # an unknown field is ignored, whatever its name
    valid = json.dumps([raw_session("s-ok", "t-ok", NOW - DAY, tutor_name="N\u00e9l \U0001f600")]).encode()
    assert post_raw(client, valid).status_code == 202  # real non-ASCII text, surrogate pairs included, is fine
    with database.connection_context():
        assert sorted(item.session_id for item in InboxItem.select()) == ["s-key", "s-ok"]
        assert {item.status for item in InboxItem.select()} == {"processed"}
    assert_error(client.simulate_get("/api/tutors/t-%00"), 404)
    assert_error(client.simulate_get("/api/tutors/t-%00/history"), 404)
    assert '"q" parameter' in assert_error(client.simulate_get("/api/tutors", query_string="q=t%00"), 400)["message"]


@pytest.mark.parametrize(("offset", "status"), [(MAX_OFFSET, 200), (MAX_OFFSET + 1, 400), (2**63, 400), (10**30, 400)])
def test_offsets_beyond_the_documented_maximum_are_400_not_500(client, offset, status):
    response = client.simulate_get("/api/tutors", params={"offset": offset})
    assert response.status_code == status, response.text


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00",
                                    "0001-01-01T00:00:00", "9999-12-31T23:59:59"])
def test_extreme_datetimes_are_refused_by_name(client, moment):
    tutor_id = f"t-extreme-{moment[:4]}-{len(moment)}"
    response = client.simulate_post("/api/sessions", json=raw_session(f"s-{tutor_id}", tutor_id, NOW,
                                                                      scheduled_time=moment))
    assert response.status_code == 400, response.text
    assert response.json["error"]["errors"][0]["field"] == "scheduled_time"


@pytest.mark.parametrize("headers", [
    {}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_KEY}"},
    {"Authorization": "Bearer "}, {"Authorization": API_KEY}, {"X-API-Key": ""},
], ids=["none", "wrong-x-api-key", "wrong-bearer", "basic-scheme", "empty-bearer", "no-scheme", "empty-x-api-key"])
@pytest.mark.parametrize("path", ["/api/tutors", "/api/tutors/t-ada", "/api/tutors/t-ada/history"])
def test_a_missing_or_invalid_key_is_401_with_a_challenge(anonymous, headers, path):
    response = anonymous.simulate_get(path, headers=headers)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_post_without_a_key_is_401_and_stores_nothing(anonymous, client):
    before = total_tutors(client)
    response = anonymous.simulate_post("/api/sessions", json=raw_session("s-nokey", "t-nokey", NOW - DAY))
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert total_tutors(client) == before


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {API_KEY}"}, {"authorization": f"bearer {API_KEY}"}, {"X-API-Key": API_KEY},
    {"X-API-Key": "wrong", "Authorization": f"Bearer {API_KEY}"},
], ids=["bearer", "lowercase-bearer", "x-api-key", "bearer-wins"])
def test_both_documented_key_schemes_are_accepted(anonymous, headers):
    assert anonymous.simulate_get("/api/tutors", headers=headers).status_code == 200


def test_health_and_the_document_need_no_key(anonymous):
    health = anonymous.simulate_get("/api/health")
    assert health.status_code == 200 and health.json["status"] in ("ok", "degraded")
    document = anonymous.simulate_get("/api/openapi.json")
    assert document.status_code == 200 and document.json["openapi"].startswith("3.")
    assert document.headers["Content-Type"].startswith("application/json")


def test_the_seeded_tutors_are_scored_and_served(client):
    for tutor_id in SEEDED_TUTORS:
        response = client.simulate_get(f"/api/tutors/{tutor_id}")
        assert response.status_code == 200 and response.json["session_summary"]["total"] == 6
    assert client.simulate_get("/api/tutors/t-cy").json["flagged"] is True
