import datetime as dt

import pytest

from engine import queries
from engine.ingest import ingest
from engine.models import RiskEvent
from engine.queries import QueryError, get_tutor_detail, get_tutor_history, list_tutors
from engine.rescoring import rescore_all
from engine.storing import store_sessions
from engine.validation import validate_session
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
    booked = [r["original_time"] for r in detail["recent_reschedules"]]
    assert len(booked) == 4 and booked == sorted(booked, reverse=True)
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


def test_recent_reschedules_are_the_latest_ten_by_the_time_each_was_booked_for(services, database, metrics):
    ingest(services, [raw_session(f"m{i}", "t-many", NOW - i * DAY, "rescheduled", "tutor") for i in range(14)])
    with database.connection_context():
        recent = get_tutor_detail("t-many", metrics)["recent_reschedules"]
    assert [r["session_id"] for r in recent] == [f"m{i}" for i in range(10)]


def test_days_past_the_snapshots_start_from_each_rules_last_event_before_the_window(services, three_tutors,
                                                                                   metrics):
    """Days not yet rolled forward take their flag from the events: those before the window set where it
    starts, one rule per rule, and those inside it move it on."""
    rescore_all(services)
    rule = RiskEvent.get(RiskEvent.tutor == "t-alice").rule
    later = NOW.date() + 20 * DAY  # ten days, none of them snapshotted, all after Alice's raise
    history = get_tutor_history("t-alice", 10, later, metrics)
    assert [point["flagged"] for point in history["points"]] == [True] * 10
    assert not any(event["type"] == "risk" for event in history["events"])
    assert [point["flagged"] for point in get_tutor_history("t-bob", 10, later, metrics)["points"]] == [False] * 10

    def event(tutor_id, rule, kind, day):
        moment = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
        RiskEvent.create(tutor=tutor_id, rule=rule, kind=kind, day=day, occurred_at=moment, explanation={},
                         recorded_at=moment)

    event("t-bob", "another-rule", "raised", NOW.date() - 50 * DAY)  # raised long before, never cleared
    event("t-alice", rule, "cleared", later - 4 * DAY)  # cleared inside the window
    bob = get_tutor_history("t-bob", 10, later, metrics)
    assert [point["flagged"] for point in bob["points"]] == [True] * 10
    alice = get_tutor_history("t-alice", 10, later, metrics)
    assert [point["flagged"] for point in alice["points"]] == [True] * 5 + [False] * 5
    assert [(e["kind"], e["date"]) for e in alice["events"]] == [("cleared", (later - 4 * DAY).isoformat())]


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


@pytest.mark.parametrize("scored_everyone", [True, False], ids=["every tutor scored", "one not yet scored"])
def test_a_metric_sort_pages_valued_tutors_in_order_then_the_rest_by_id(services, database, scored_everyone):
    """Both ways of finding the tutors without a value (a null row each, or no row yet) give the same order
    as sorting every record by hand, filtered or not, on every page."""
    ingest(services, [raw_session(f"s{i}", f"t{i % 8}", NOW - dt.timedelta(days=(i % 8) * 3 + i % 2),
                                  "rescheduled" if i % 5 == 0 else "completed", "tutor") for i in range(48)])
    if not scored_everyone:
        store_sessions(services, [validate_session(raw_session("new-1", "t-new", NOW - DAY, "completed"))])
    names = services.metric_names
    with database.connection_context():
        everyone = list_tutors(names, limit=500).tutors
        assert any(t["sessions_7d"] is None or t["reschedule_rate_7d"] is None for t in everyone)
        for metric in ("reschedule_rate_7d", "sessions_30d"):
            for flagged in (None, False):
                for descending in (False, True):
                    chosen = [t for t in everyone if flagged is None or t["flagged"] == flagged]
                    valued = sorted((t for t in chosen if t[metric] is not None),
                                    key=lambda t: (t[metric], t["tutor_id"]), reverse=descending)
                    rest = sorted((t for t in chosen if t[metric] is None), key=lambda t: t["tutor_id"])
                    expected = [t["tutor_id"] for t in valued + rest]
                    sort = ("-" if descending else "") + metric
                    pages = [list_tutors(names, flagged=flagged, sort=sort, limit=3, offset=offset).tutors
                             for offset in range(0, len(chosen) + 3, 3)]
                    assert [t["tutor_id"] for page in pages for t in page] == expected, (sort, flagged)


def test_a_descending_sort_is_the_ascending_one_reversed_ties_included(services, database):
    """Ties by id both ways, so one index serves a sort from either end; a value-less tutor comes last
    either way."""
    ingest(services, [raw_session(f"s{i}", f"t{i % 9}", NOW - dt.timedelta(days=i % 5), "rescheduled" if i % 4 == 0
                                  else "completed", "tutor", tutor_name=None if i % 9 == 8 else f"Tutor {i % 3}")
                      for i in range(45)])
    with database.connection_context():
        def order(sort):
            return [(t["tutor_id"], t["name"]) for t in queries.list_tutors(services.metric_names, sort=sort).tutors]

        risk = order("-risk_score")
        assert len(risk) == 9 and order("risk_score") == risk[::-1]
        assert order("flagged") == order("-flagged")[::-1]
        by_name = order("name")  # three names, three tutors each: ties by id
        assert by_name[-1] == ("t8", None) and by_name[:8] == sorted(by_name[:8], key=lambda t: (t[1], t[0]))
        assert order("-name")[:8] == by_name[:8][::-1] and order("-name")[-1] == ("t8", None)
