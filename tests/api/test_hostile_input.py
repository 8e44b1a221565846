"""Hostile input: every request a careless or malicious client can make is answered with a 4xx whose JSON error
names what is wrong, stores nothing half-way, and leaves no traceback in the API's log; what is accepted (SQL and
script injection in text) is stored verbatim and comes back verbatim.

One app per database for the module (SQLite and PostgreSQL, in-process through falcon.testing), with a few tutors
already scored; every refusal is checked against the row counts of every table before and after it. The targeted
tests in test_openapi_conformance.py cover the simpler cases (415, nesting at the top level, NaN in a record, NUL
in four fields); these go further.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import peewee
import pytest
from falcon import testing

from api.app import create_app
from api.resources.rules import MAX_BODY as MAX_RULE_BODY
from engine import queries
from engine.config import Settings
from engine.db import bind_database, release_connections
from engine.migrations import migrate
from engine.models import MODELS
from engine.queue import create_huey
from engine.services import Services, build_services
from engine.tasks import register_tasks
from tests.conftest import NOW
from tests.factories import raw_session
from tests.support.databases import empty_database

KEY, ADMIN_KEY = "hostile-key", "hostile-admin-key"
DAY = dt.timedelta(days=1)
ODD_TUTOR = "odd\u2215id..with\uff0fslashes"  # a real tutor whose id looks like a path trick
PERCENT_TUTOR = "t-percent"  # named with LIKE's wildcards, so a search for them must match literally
INJECTIONS = [
    "'; DROP TABLE sessions; --",
    "Robert'); DROP TABLE tutors;--",
    "' OR '1'='1",
    "1 UNION SELECT api_key FROM api_keys --",
    "x' || pg_sleep(5) || '",
    "\\'; --",
    "%_\\%",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.cookie)>",
    '"><svg onload=alert(1)>',
    "{{7*7}}{% raw %}${7*7}",
    "javascript:alert(1)",
]


@dataclass
class Api:
    client: testing.TestClient
    admin: testing.TestClient
    services: Services

    @property
    def database(self) -> peewee.Database:
        return self.services.database


def seed_sessions() -> list[dict]:
    sessions = []
    for tutor_id, name in (("t-ada", "Ada Lovelace"), (ODD_TUTOR, "Odd Id"), (PERCENT_TUTOR, "100% Sure_Thing")):
        sessions += [raw_session(f"{tutor_id}-s{i}", tutor_id, NOW - (i + 1) * DAY,
                                 "rescheduled" if i < 2 else "completed", "tutor", tutor_name=name)
                     for i in range(6)]
    return sessions


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request, tmp_path_factory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("hostile")
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else f"sqlite:///{data_dir}/h.db"
    settings = Settings(data_dir=data_dir, database_url=url, queue_url="memory://", api_keys=(KEY,),
                        admin_api_keys=(ADMIN_KEY,), ingest_rate_limit=None, email_policy="off")
    services = build_services(settings).at(NOW)
    migrate(services.database)
    empty_database(services.database)
    app = create_app(services, register_tasks(create_huey(settings.queue_url), services))
    api = Api(testing.TestClient(app, headers={"X-API-Key": KEY}),
              testing.TestClient(app, headers={"X-API-Key": ADMIN_KEY}), services)
    seeded = api.client.simulate_post("/api/sessions", json=seed_sessions())
    assert seeded.status_code == 202, seeded.text
    yield api
    bind_database(services.database)
    empty_database(services.database)
    release_connections(services.database)


@pytest.fixture(autouse=True)
def no_traceback_in_the_log(api, caplog) -> Iterator[None]:
    """Every request is logged (so the capture works), and none of them logged an error or a traceback."""
    bind_database(api.database)  # the models are bound process-wide: back to this module's database
    caplog.set_level(logging.INFO, logger="tutor_quality")
    yield
    ours = [record for record in caplog.get_records("call") if record.name.startswith("tutor_quality")]
    assert any("event=http_request" in record.getMessage() for record in ours)
    bad = [record.getMessage() for record in ours
           if record.levelno >= logging.ERROR or record.exc_info or "unhandled_error" in record.getMessage()]
    assert not bad


def row_counts(database: peewee.Database) -> dict[str, int]:
    """Rows in every table, in one statement (it runs twice per test)."""
    tables = [model._meta.table_name for model in MODELS]
    with database.connection_context():
        counts = database.execute_sql("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))
        return dict(zip(tables, counts.fetchone(), strict=True))


@pytest.fixture
def nothing_stored(api) -> Iterator[None]:
    before = row_counts(api.database)
    yield
    assert row_counts(api.database) == before


def refused(response, status: int, *named: str) -> dict:
    """The documented error shape, its message or field errors naming each of ``named``."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json["error"]
    assert error["status"] == status and error["title"] and error["message"]
    said = " ".join([error["title"], error["message"], *(f"{e['field']}: {e['message']}"
                                                         for e in error.get("errors", []))])
    assert all(name in said for name in named), said
    return error


def post_raw(api: Api, body: bytes, **kwargs):
    return api.client.simulate_post("/api/sessions", body=body, headers={"Content-Type": "application/json"},
                                    **kwargs)


def a_session(n: int = 0, **fields) -> dict:
    return {**raw_session(f"h-s{n}", "t-hostile", NOW - DAY, "rescheduled", "tutor", tutor_name="Hal",
                          student_name="Stu", subject="Maths"), **fields}


def with_reschedule(**fields) -> dict:
    record = a_session()
    record["reschedule_info"] = {**record["reschedule_info"], **fields}
    return record


# --- the size of the body ---------------------------------------------------------------------------------------


def oversized(api: Api) -> bytes:
    limit = api.services.settings.max_body_bytes
    body = json.dumps([a_session(i, subject="x" * 190) for i in range(limit // 500)]).encode()
    assert len(body) > limit
    return body


@pytest.mark.usefixtures("nothing_stored")
def test_a_body_over_the_limit_is_413_naming_the_limit_whether_declared_or_chunked(api):
    limit = str(api.services.settings.max_body_bytes)
    refused(post_raw(api, oversized(api)), 413, limit)
    declared_only = api.client.simulate_post("/api/sessions", body=b"[]", headers={
        "Content-Type": "application/json", "Content-Length": str(int(limit) + 1)})
    refused(declared_only, 413, limit)
    # chunked: no Content-Length, and the server (gunicorn) ends the de-chunked stream
    chunked = post_raw(api, oversized(api), extras={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    refused(chunked, 413, limit)


def test_a_chunked_body_within_the_limit_is_read_not_taken_for_empty(api):
    body = json.dumps(a_session(1, session_id="h-chunked")).encode()
    response = post_raw(api, body, extras={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    assert response.status_code == 202, response.text
    with api.database.connection_context():
        assert queries.get_session("h-chunked")["tutor_id"] == "t-hostile"


# --- the shape of the JSON --------------------------------------------------------------------------------------


def deep(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(("where", "depth", "named"), [
    ("tutor_name", 100_000, "nested too deeply"),
    ("reschedule_info", 100_000, "nested too deeply"),
    ("tutor_name", 50, "tutor_name: must be a string"),
    ("reschedule_info", 50, "reschedule_info: must be a JSON object"),
])
def test_deeply_nested_json_inside_a_record_is_400(api, where, depth, named):
    body = json.dumps(a_session()).replace(f'"{where}": ', f'"{where}": {deep(depth)}, "was_{where}": ', 1)
    refused(post_raw(api, body.encode()), 400, named)


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(("body", "named"), [
    ([a_session(i) for i in range(5000)], "1 to 1000"),
    (a_session(tutor_name=["x"] * 5000), "tutor_name: must be a string"),
    (a_session(session_id=list(range(5000))), "session_id: must be a string or a whole number"),
    (a_session(reschedule_info=[{"initiator": "tutor"}] * 5000), "reschedule_info: must be a JSON object"),
    (a_session(status=["rescheduled"] * 5000), "status: must be one of"),
    (a_session(scheduled_time=[NOW.isoformat()] * 5000), "scheduled_time: must be an ISO 8601 datetime string"),
], ids=["top-level", "name", "id", "reschedule_info", "status", "datetime"])
def test_five_thousand_element_arrays_are_400(api, body, named):
    refused(api.client.simulate_post("/api/sessions", json=body), 400, named)


# --- dates ------------------------------------------------------------------------------------------------------

ABSURD_DATES = [
    "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
    "1970-01-01T00:30:00+01:00", "2100-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+14:00",
    "25/11/2026", "yesterday", "", "   ", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T24:01:00Z",
    "2026-11-25T12:00:00+25:00", "\uff12\uff10\uff12\uff16-11-25", "2026-11-25T12:00:00Z\u0000", 1764072000,
    -1, True, {"year": 2026},
]
DATE_FIELDS = ["scheduled_time", "completed_time", "reschedule_info.original_time", "reschedule_info.new_time",
               "reschedule_info.requested_at"]


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("field", DATE_FIELDS)
def test_absurd_dates_are_400_naming_the_field(api, field):
    for value in ABSURD_DATES:
        nested, _, name = field.rpartition(".")
        record = with_reschedule(**{name: value}) if nested else a_session(**{name: value})
        refused(api.client.simulate_post("/api/sessions", json=record), 400, f"{field}: ")


def test_a_datetime_without_a_zone_is_read_as_utc_and_the_edges_of_the_range_are_kept(api):
    records = [a_session(10, session_id="h-naive", scheduled_time="2026-11-20T09:30:00"),
               a_session(11, session_id="h-first", scheduled_time="1970-01-01T00:00:00Z"),
               a_session(12, session_id="h-last", scheduled_time="2099-12-31T23:59:59.999999+00:00")]
    assert api.client.simulate_post("/api/sessions", json=records).status_code == 202
    with api.database.connection_context():
        assert queries.get_session("h-naive")["scheduled_time"].startswith("2026-11-20T09:30:00")
        assert queries.get_session("h-first")["scheduled_time"].startswith("1970-01-01T00:00:00")
        assert queries.get_session("h-last")["scheduled_time"].startswith("2099-12-31T23:59:59")


# --- encodings, NUL and control characters ----------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("encode", [
    lambda text: text.replace("Hal", "H\u00e4l").encode("latin-1"),
    lambda text: text.encode("utf-16"),
    lambda text: text.encode("utf-16-le"),
    lambda text: text.encode("utf-32"),
    lambda text: text.encode().replace(b'"Hal"', b'"H\xc0\xafl"'),  # an overlong "/"
    lambda text: text.encode().replace(b'"Hal"', b'"Hal\xe2\x82"'),  # a truncated sequence
    lambda text: text.encode().replace(b'"Hal"', b'"\x80Hal"'),  # a lone continuation byte
    lambda text: b"\xff\xfe" + text.encode(),
], ids=["latin-1", "utf-16", "utf-16-le", "utf-32", "overlong", "truncated", "continuation", "bad-bom"])
def test_bytes_that_are_not_utf8_are_400(api, encode):
    refused(post_raw(api, encode(json.dumps(a_session()))), 400, "not valid UTF-8")


def test_a_utf8_byte_order_mark_is_ignored(api):
    body = b"\xef\xbb\xbf" + json.dumps(a_session(13, session_id="h-bom")).encode()
    assert post_raw(api, body).status_code == 202


TEXT_FIELDS = ["session_id", "tutor_id", "student_id", "tutor_name", "student_name", "subject", "status",
               "reschedule_info.reason", "reschedule_info.initiator"]


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_nul_in_any_string_is_400_naming_the_field(api, field):
    nested, _, name = field.rpartition(".")
    source = with_reschedule() if nested else a_session()
    value = (source["reschedule_info"] if nested else source)[name]
    for spoiled in (value + "\u0000", "\u0000" + value, value[:1] + "\u0000" + value[1:]):
        record = with_reschedule(**{name: spoiled}) if nested else a_session(**{name: spoiled})
        refused(api.client.simulate_post("/api/sessions", json=record), 400, f"{field}: ")


@pytest.mark.usefixtures("nothing_stored")
def test_a_raw_nul_byte_is_400(api):
    raw = json.dumps(a_session()).encode().replace(b'"Hal"', b'"H\x00al"')
    refused(post_raw(api, raw), 400, "NUL")


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(("field", "value"), [
    ("tutor_id", "t\n1"), ("session_id", "s\r1"), ("student_id", "\x1b[2J"), ("tutor_id", "t\t1"),
    ("session_id", "s\u2028x"), ("tutor_id", "t\x85x"),
    ("tutor_name", "\x1b[31mRed"), ("subject", "bell\x07"), ("reschedule_info.reason", "back\x08space"),
])
def test_control_characters_are_400_in_ids_and_all_but_line_breaks_in_text(api, field, value):
    nested, _, name = field.rpartition(".")
    record = with_reschedule(**{name: value}) if nested else a_session(**{name: value})
    refused(api.client.simulate_post("/api/sessions", json=record), 400, f"{field}: ", "control characters")


def test_line_breaks_and_tabs_in_free_text_are_kept(api):
    record = a_session(14, session_id="h-lines", tutor_name="Hal\tHolt", subject="Maths\r\nand physics")
    record["reschedule_info"]["reason"] = "ill\nsee note"
    assert api.client.simulate_post("/api/sessions", json=record).status_code == 202
    with api.database.connection_context():
        stored = queries.get_session("h-lines")
    assert (stored["subject"], stored["reschedule"]["reason"]) == ("Maths\r\nand physics", "ill\nsee note")


# --- numbers ----------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(("replace", "by", "named"), [
    ('"duration_minutes": 1', '"duration_minutes": NaN', "NaN"),
    ('"duration_minutes": 1', '"duration_minutes": -Infinity', "-Infinity"),
    ('"new_time": ', '"new_time": Infinity, "was": ', "Infinity"),
    ('"tutor_id": "t-hostile"', '"tutor_id": NaN', "NaN"),
    ('"duration_minutes": 1', '"duration_minutes": 1e400', "duration_minutes: must be a whole number"),
    ('"duration_minutes": 1', '"duration_minutes": -1e400', "duration_minutes: must be a whole number"),
    ('"session_id": "h-s0"', '"session_id": 1e400', "session_id: must be a string or a whole number"),
    ('"session_id": "h-s0"', '"session_id": 1.5', "session_id: must be a string or a whole number"),
    ('"tutor_id": "t-hostile"', '"tutor_id": ' + "9" * 200, "tutor_id: must be at most 128 characters"),
    ('"tutor_id": "t-hostile"', '"tutor_id": ' + "9" * 5000, "digits"),
    ('"duration_minutes": 1', '"duration_minutes": ' + "9" * 30, "duration_minutes: must be between 0 and 1440"),
    ('"duration_minutes": 1', '"duration_minutes": -1', "duration_minutes: must be between 0 and 1440"),
    ('"duration_minutes": 1', '"duration_minutes": 1.5', "duration_minutes: must be a whole number"),
    ('"duration_minutes": 1', '"duration_minutes": "60"', "duration_minutes: must be a whole number"),
    ('"is_first_session": true', '"is_first_session": 1', "is_first_session: must be true or false"),
])
def test_non_finite_huge_and_mistyped_numbers_are_400(api, replace, by, named):
    text = json.dumps(a_session(duration_minutes=1, is_first_session=True))
    assert replace in text
    refused(post_raw(api, text.replace(replace, by, 1).encode()), 400, named)


def test_a_whole_number_id_is_kept_as_its_digits(api):
    record = a_session(15, session_id=2**70, tutor_id=42, student_id=7)
    assert api.client.simulate_post("/api/sessions", json=record).json["session_ids"] == [str(2**70)]
    with api.database.connection_context():
        assert queries.get_session(str(2**70))["tutor_id"] == "42"


# --- injection: stored verbatim, found literally ----------------------------------------------------------------


def test_sql_and_script_injection_in_every_text_field_is_stored_and_served_verbatim(api):
    before = row_counts(api.database)
    for n, text in enumerate(INJECTIONS):
        tutor_id = "" if "/" in text else text  # a slash cannot be a path segment; the id is tried without it
        record = raw_session(f"{text}#s", tutor_id or f"inj-{n}", NOW - DAY, "rescheduled", "tutor", reason=text,
                             tutor_name=text, student_name=text, subject=text, student_id=f"{text}#stu")
        assert api.client.simulate_post("/api/sessions", json=record).status_code == 202, text
        detail = api.client.simulate_get(f"/api/tutors/{quote(tutor_id or f'inj-{n}', safe='')}")
        assert detail.status_code == 200, text
        assert detail.json["name"] == text and detail.json["recent_reschedules"][0]["reason"] == text
        with api.database.connection_context():
            stored = queries.get_session(f"{text}#s")
        assert (stored["student_name"], stored["subject"], stored["student_id"]) == (text, text, f"{text}#stu")
        found = api.client.simulate_get("/api/tutors", params={"q": text}).json
        assert found["total"] >= 1 and all(contains(t, text) for t in found["tutors"])
    after = row_counts(api.database)
    assert after["tutors"] == before["tutors"] + len(INJECTIONS) and after["sessions"] == before["sessions"] + len(
        INJECTIONS)


def contains(tutor: dict, text: str) -> bool:
    """What a search means: the tutor's id or name holds the text, whatever its case."""
    return text.lower() in tutor["tutor_id"].lower() or text.lower() in (tutor["name"] or "").lower()


@pytest.mark.parametrize("wildcard", ["%", "_", "\\", "%%", "_%_"])
def test_search_matches_like_wildcards_literally(api, wildcard):
    found = api.client.simulate_get("/api/tutors", params={"q": wildcard, "limit": 500}).json
    assert all(contains(t, wildcard) for t in found["tutors"])
    if wildcard in "100% Sure_Thing":
        assert PERCENT_TUTOR in [t["tutor_id"] for t in found["tutors"]]


# --- query parameters and paths ---------------------------------------------------------------------------------

HOSTILE_PARAMETERS = ["1 OR 1=1", "1; DROP TABLE tutors", "' OR ''='", "-1", "1e3", "0x10", "99999999999999999999",
                      "<script>", "\u0000", "NaN", "Infinity", "true", " 1 2 "]


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("parameter", ["sort", "flagged", "limit", "offset"])
def test_hostile_values_of_each_list_parameter_are_400_naming_it(api, parameter):
    for value in HOSTILE_PARAMETERS:
        if parameter == "flagged" and value == "true":
            continue
        response = api.client.simulate_get("/api/tutors", params={parameter: value})
        refused(response, 400, f'"{parameter}"')
    refused(api.client.simulate_get("/api/tutors", query_string=f"{parameter}="), 400, f'"{parameter}"')  # blank
    for value in ("name; DROP TABLE tutors", "name DESC, (SELECT 1)", "-", "name,risk_score", ""):
        refused(api.client.simulate_get("/api/tutors", query_string=f"sort={quote(value)}"), 400, '"sort"')


@pytest.mark.usefixtures("nothing_stored")
def test_hostile_search_and_history_parameters_are_400_naming_them(api):
    for query in ("q=%00", "q=a%00b", "q=" + "x" * 201):
        refused(api.client.simulate_get("/api/tutors", query_string=query), 400, '"q"')
    for value in HOSTILE_PARAMETERS + ["0", "10000"]:
        refused(api.client.simulate_get("/api/tutors/t-ada/history", params={"days": value}), 400, '"days"')
    refused(api.client.simulate_get("/api/rules/reschedule_rate/history", params={"limit": "1; --"}), 400, '"limit"')


PATH_TRICKS = ["..", "../rules", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e", "..\\..\\windows", "%00", "t-ada%00",
               "%00t-ada", "\u2215etc\u2215passwd", "\uff0fetc", "\u2044etc", "%E2%88%95etc", "%C0%AF", "%ff", "%zz",
               "%252e%252e", "t-ada;drop", "t-ada%3Fx=1", "%20", "x" * 10_000, "\U0001f600" * 1000]


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("suffix", ["", "/history"])
def test_path_tricks_in_tutor_ids_are_404_never_500(api, suffix):
    for trick in PATH_TRICKS:
        refused(api.client.simulate_get(f"/api/tutors/{trick}{suffix}"), 404)
    for trick in ("t-ada/../t-ada", "t-ada/history/..", "/t-ada", "t-ada%2Fhistory%2F.."):
        refused(api.client.simulate_get(f"/api/tutors/{trick}{suffix}"), 404)


def test_a_path_cannot_forge_a_log_line(api, caplog):
    for trick in ("x%0Alevel=ERROR%20event=forged", "x%0D%0Aevent=forged", "x%E2%80%A8event=forged", "x%C2%85e=f"):
        refused(api.client.simulate_get(f"/api/tutors/{trick}"), 404)
    lines = [record.getMessage() for record in caplog.get_records("call") if "http_request" in record.getMessage()]
    assert len(lines) == 4 and all(len(line.splitlines()) == 1 for line in lines), lines


def test_a_tutor_whose_id_looks_like_a_path_trick_is_found_by_it(api):
    assert api.client.simulate_get(f"/api/tutors/{quote(ODD_TUTOR)}").json["tutor_id"] == ODD_TUTOR
    assert api.client.simulate_get(f"/api/tutors/{quote(ODD_TUTOR)}/history").json["tutor_id"] == ODD_TUTOR


@pytest.mark.usefixtures("nothing_stored")
def test_path_tricks_in_rule_names_are_404(api):
    for trick in PATH_TRICKS[:12]:
        refused(api.client.simulate_get(f"/api/rules/{trick}"), 404)
        refused(api.client.simulate_get(f"/api/rules/{trick}/history"), 404)


@pytest.mark.usefixtures("nothing_stored")
def test_unknown_routes_and_methods_say_what_is_wrong(api):
    refused(api.client.simulate_get("/api/sessions/../../etc/passwd"), 404, "openapi.json")
    refused(api.client.simulate_get("/api/nothing"), 404, "openapi.json")
    not_allowed = api.admin.simulate_delete("/api/tutors/t-ada")
    refused(not_allowed, 405, "Allow")
    assert "GET" in not_allowed.headers["Allow"]


# --- rule settings ----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(("body", "named"), [
    ({"settings": {"threshold": 12}, "reason": "because\u0000"}, "reason"),
    ('{"settings": {"threshold": 12}, "reason": "because \\ud800"}', "reason"),
    ({"settings": {"threshold": 12}, "reason": "r", "changed_by": "al\u0000ice"}, "changed_by"),
    ({"settings": {"threshold": 12}, "reason": "r", "changed_by": "alice\nevent=forged"}, "changed_by"),
    ('{"settings": {"threshold": 12}, "reason": "r", "changed_by": "\\udc00"}', "changed_by"),
    ({"settings": {"thresh\u0000old": 12}, "reason": "r"}, "NUL"),
    ('{"settings": {"\\udc00": 12}, "reason": "r"}', "surrogates"),
    ({"settings": {"flag_policy": "rate\u0000"}, "reason": "r"}, "NUL"),
    ('{"settings": {"threshold": 12}, "reason": "r", "\\udc00": 1}', "Unknown fields"),
    ('{"settings": {"threshold": NaN}, "reason": "r"}', "NaN"),
    ('{"settings": {"threshold": 1e400}, "reason": "r"}', "finite"),
    ({"settings": {"threshold": 10**300}, "reason": "r"}, "threshold"),
    ({"settings": {"threshold": "12; DROP TABLE settings_changes"}, "reason": "r"}, "threshold"),
    ({"settings": {f"s{i}": i for i in range(500)}, "reason": "r"}, "is not a setting"),
    ({"settings": {"threshold": [12] * 5000}, "reason": "r"}, "limit"),
    ("[" * 100_000, "limit"),
    ("[" * 5000, "nested too deeply"),
])
def test_hostile_settings_changes_are_4xx_and_change_nothing(api, body, named):
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = api.admin.simulate_put("/api/rules/reschedule_rate", body=raw,
                                      headers={"Content-Type": "application/json"})
    refused(response, 413 if len(raw) > MAX_RULE_BODY else 400, named)
