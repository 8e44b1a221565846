import datetime as dt

import pytest

from engine.validation import MAX_ID_LENGTH, ValidationError, validate_session
from tests.factories import raw_session

WHEN = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)


def errors_of(record) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_session(record)
    return {e.field: e.message for e in caught.value.errors}


def test_valid_record_is_typed_and_in_utc():
    record = validate_session(raw_session("s1", "t1", WHEN, "rescheduled", "tutor"))
    assert record.scheduled_time == WHEN and record.scheduled_time.tzinfo == dt.UTC
    assert record.reschedule.initiator == "tutor"
    assert record.reschedule.delay == dt.timedelta(days=2)


def test_every_missing_required_field_is_named():
    assert set(errors_of({})) == {"session_id", "tutor_id", "student_id", "scheduled_time", "status"}


def test_status_must_be_in_the_enum():
    assert "status" in errors_of(raw_session("s1", "t1", WHEN, status="cancelled"))


def test_rescheduled_needs_reschedule_info_with_a_known_initiator():
    record = raw_session("s1", "t1", WHEN, "rescheduled")
    del record["reschedule_info"]
    assert errors_of(record) == {"reschedule_info": "is required when status is rescheduled"}
    record["reschedule_info"] = {"initiator": "platform"}
    assert "reschedule_info.initiator" in errors_of(record)


def test_reschedule_info_on_a_completed_session_is_an_error():
    record = raw_session("s1", "t1", WHEN)
    record["reschedule_info"] = {"initiator": "tutor"}
    assert "reschedule_info" in errors_of(record)


def test_datetimes_must_be_iso_8601():
    record = raw_session("s1", "t1", WHEN, "rescheduled", "tutor")
    record["scheduled_time"] = "last tuesday"
    record["reschedule_info"]["requested_at"] = "2026-13-01"
    assert set(errors_of(record)) == {"scheduled_time", "reschedule_info.requested_at"}


def test_time_without_zone_is_utc_and_offsets_are_converted():
    naive = validate_session({**raw_session("s1", "t1", WHEN), "scheduled_time": "2026-11-20T16:00:00"})
    zoned = validate_session({**raw_session("s1", "t1", WHEN), "scheduled_time": "2026-11-20T11:00:00-05:00"})
    assert naive.scheduled_time == zoned.scheduled_time == WHEN


def test_overlong_id_and_wrong_types_are_rejected():
    record = raw_session("s" * (MAX_ID_LENGTH + 1), "t1", WHEN, duration_minutes="long", is_first_session="yes")
    assert set(errors_of(record)) == {"session_id", "student_id", "duration_minutes", "is_first_session"}


def test_non_object_record_is_rejected():
    assert errors_of(["not", "a", "record"]) == {"(record)": "must be a JSON object"}


def test_reschedule_original_time_defaults_to_scheduled_time_and_notice_is_derived():
    record = raw_session("s1", "t1", WHEN, "rescheduled", "tutor")
    del record["reschedule_info"]["original_time"]
    record["reschedule_info"]["requested_at"] = (WHEN - dt.timedelta(hours=3)).isoformat()
    info = validate_session(record).reschedule
    assert info.original_time == WHEN
    assert info.notice == dt.timedelta(hours=3)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z",
                                    "2100-01-01T00:00:00Z"])
def test_datetimes_outside_1970_to_2099_are_refused(moment):
    assert "scheduled_time" in errors_of({**raw_session("s1", "t1", WHEN), "scheduled_time": moment})


@pytest.mark.parametrize("text", ["t\x00", "t\ud800"])
def test_text_no_database_can_store_is_refused(text):
    expected = {"tutor_id": "must not contain NUL characters or lone surrogates"}
    assert errors_of(raw_session("s1", text, WHEN)) == expected
