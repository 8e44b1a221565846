import datetime as dt

import pytest

from engine import queries
from engine.ingest import ingest
from engine.queries import QueryError, get_tutor_detail, get_tutor_history, list_tutors
from engine.rescoring import rescore_all
from tests.conftest import NOW
from tests.factories import raw_session

DAY = dt.timedelta(days=1)
TUTOR_FIELDS = [
    "tutor_id", "name", "sessions_7d", "sessions_30d", "sessions_90d", "tutor_reschedules_7d",
    "tutor_reschedules_30d", "tutor_reschedules_90d", "reschedule_rate_7d", "reschedule_rate_30d",
    "reschedule_rate_90d", "flagged", "risk_score", "updated_at",
]


@pytest.fixture
def metrics(rules):
    return rules.metric_names


@pytest.fixture
def three_tutors(database, services):
    """Alice: 4 of 10 moved (flagged). Bob: 1 of 10. Carol: sessions only 60 days ago (no 7/30-day rate)."""
    raws = []
    plans = {"t-alice": ("Alice Moreno", 4, 1), "t-bob": ("Bob Stone", 1, 1), "t-carol": ("Carol King", 0, 60)}
    for tutor_id, (name, moved, days_back) in plans.items():
        for i in range(10):
            status = "rescheduled" if i < moved else "completed"
            raw = raw_session(f"{tutor_id}-{i}", tutor_id, NOW - (days_back + i * 0.5) * DAY, status, "tutor",
                              tutor_name=name)
            raws.append(raw)
    ingest(services, raws)
    with database.connection_context():
        yield


def test_tutor_record_has_the_documented_fields(three_tutors, metrics):
    record = list_tutors(metrics).tutors[0]
    assert set(TUTOR_FIELDS) <= set(record)
    assert isinstance(record["sessions_7d"], int) and isinstance(record["flagged"], bool)


def test_filter_by_flag(three_tutors, metrics):
    assert [t["tutor_id"] for t in list_tutors(metrics, flagged=True).tutors] == ["t-alice"]
    assert {t["tutor_id"] for t in list_tutors(metrics, flagged=False).tutors} == {"t-bob", "t-carol"}


def test_search_matches_id_or_name_case_insensitively(three_tutors, metrics):
    assert [t["tutor_id"] for t in list_tutors(metrics, search="moreno").tutors] == ["t-alice"]
    assert [t["tutor_id"] for t in list_tutors(metrics, search="T-BO").tutors] == ["t-bob"]
    assert list_tutors(metrics, search="%").total == 0


def test_sort_descending_puts_empty_windows_last(three_tutors, metrics):
    order = [t["tutor_id"] for t in list_tutors(metrics, sort="-reschedule_rate_7d").tutors]
    assert order == ["t-alice", "t-bob", "t-carol"]
    order = [t["tutor_id"] for t in list_tutors(metrics, sort="reschedule_rate_7d").tutors]
    assert order == ["t-bob", "t-alice", "t-carol"]


def test_paging_reports_the_total(three_tutors, metrics):
    page = list_tutors(metrics, sort="tutor_id", limit=2, offset=1)
    assert page.total == 3 and [t["tutor_id"] for t in page.tutors] == ["t-bob", "t-carol"]


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"sort": "salary"}, "sort"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"offset": -1}, "offset"),
])
def test_bad_parameters_name_themselves(three_tutors, metrics, kwargs, parameter):
    with pytest.raises(QueryError) as caught:
        list_tutors(metrics, **kwargs)
    assert caught.value.parameter == parameter


def test_detail_explains_the_flag_and_lists_recent_reschedules(three_tutors, metrics):
    detail = get_tutor_detail("t-alice", metrics)
    assert {f["rule"]: f for f in detail["flags"]}["reschedule_rate"]["explanation"]["events"] == 4
    assert any("above the 15% threshold" in line for line in detail["insights"])
    assert detail["recommendations"]
    times = [r["at"] for r in detail["recent_reschedules"]]
    assert len(times) == 4 and times == sorted(times, reverse=True)
    assert detail["session_summary"] == {
        "total": 10, "completed": 6, "rescheduled": 4, "no_show": 0,
        "first_session_at": (NOW - 5.5 * DAY).isoformat().replace("+00:00", "Z"),
        "last_session_at": (NOW - DAY).isoformat().replace("+00:00", "Z"),
    }
    assert get_tutor_detail("nobody", metrics) is None


def test_history_has_one_point_per_day_and_the_events(services, three_tutors, metrics):
    rescore_all(services)
    history = get_tutor_history("t-alice", 30, NOW.date(), metrics)
    assert len(history["points"]) == 30
    assert history["points"][-1]["date"] == NOW.date().isoformat()
    assert history["points"][-1]["reschedule_rate_30d"] == 40.0 and history["points"][-1]["flagged"]
    assert history["points"][0]["flagged"] is False and history["points"][0]["reschedule_rate_30d"] is None
    assert all(set(metrics) <= set(point) for point in history["points"])
    kinds = [(e["type"], e.get("kind")) for e in history["events"]]
    assert kinds.count(("reschedule", None)) == 4 and ("risk", "raised") in kinds
    assert get_tutor_history("nobody", 30, NOW.date(), metrics) is None
    with pytest.raises(QueryError):
        get_tutor_history("t-alice", 0, NOW.date(), metrics)


def test_every_sort_both_ways_pages_through_every_tutor_once(services, database):
    ingest(services, [raw_session(f"s{i}", f"t{i % 7}", NOW - dt.timedelta(days=i % 40), "rescheduled" if i % 3 else
                                  "completed", "tutor") for i in range(60)])
    with database.connection_context():
        everyone = {t["tutor_id"] for t in queries.list_tutors(services.metric_names, limit=500).tutors}
        for field in queries.sortable_fields(services.metric_names):
            for sort in (field, "-" + field):
                pages = [queries.list_tutors(services.metric_names, sort=sort, limit=3, offset=offset).tutors
                         for offset in (0, 3, 6)]
                ids = [t["tutor_id"] for page in pages for t in page]
                assert sorted(ids) == sorted(everyone), sort
