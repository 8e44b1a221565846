"""The generator: deterministic for a seed, with the distributions the PRD describes."""

import collections
import datetime as dt
import statistics

import pytest

from simulator.evaluate import evaluate
from simulator.generate import LOCAL_ZONE, simulate

NOW = dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def large():
    return simulate(seed=7, tutors=600, sessions_per_day=1500, now=NOW)


def test_same_seed_same_sessions_other_seed_other_sessions():
    assert simulate(seed=3, tutors=20, sessions_per_day=10, now=NOW).sessions == \
        simulate(seed=3, tutors=20, sessions_per_day=10, now=NOW).sessions
    assert simulate(seed=4, tutors=20, sessions_per_day=10, now=NOW).sessions != \
        simulate(seed=3, tutors=20, sessions_per_day=10, now=NOW).sessions


def test_default_scale_is_about_35_a_day_over_90_days_all_finished_and_in_order():
    simulation = simulate(seed=1, now=NOW)
    assert 2700 <= len(simulation.sessions) <= 3600
    times = [s["scheduled_time"] for s in simulation.sessions]
    assert times == sorted(times)
    assert simulation.first_day == dt.date(2026, 8, 28) and simulation.last_day == dt.date(2026, 11, 25)
    ends = [dt.datetime.fromisoformat(s["scheduled_time"]) + dt.timedelta(minutes=s["duration_minutes"])
            for s in simulation.sessions]
    assert max(ends) <= NOW


def test_tutor_initiated_share_is_within_half_a_point_of_98_2_percent(large):
    moved = [s for s in large.sessions if s["status"] == "rescheduled"]
    share = sum(s["reschedule_info"]["initiator"] == "tutor" for s in moved) / len(moved)
    assert len(moved) > 5000 and abs(share - 0.982) < 0.005


def test_most_tutors_are_reliable_and_about_an_eighth_chronically_high_risk(large):
    kinds = collections.Counter(t.kind for t in large.tutors)
    assert 0.10 <= kinds["chronic"] / len(large.tutors) <= 0.15
    assert kinds["reliable"] / len(large.tutors) > 0.5
    assert kinds["deteriorating"] and kinds["recovering"]


def test_weekday_evenings_and_weekends_are_busiest_and_holidays_quiet(large):
    local = [dt.datetime.fromisoformat(s["scheduled_time"]).astimezone(LOCAL_ZONE) for s in large.sessions]
    weekday_hours = collections.Counter(t.hour for t in local if t.weekday() < 5)
    assert weekday_hours.most_common(1)[0][0] in range(16, 21)
    assert weekday_hours[18] > 3 * weekday_hours[9]
    per_day = collections.Counter(t.date() for t in local)
    saturdays = [n for day, n in per_day.items() if day.weekday() == 5]
    fridays = [n for day, n in per_day.items() if day.weekday() == 4 and day != dt.date(2026, 11, 27)]
    assert statistics.mean(saturdays) > 1.4 * statistics.mean(fridays)
    labor_day, ordinary_monday = dt.date(2026, 9, 7), dt.date(2026, 9, 14)
    assert per_day[labor_day] < 0.6 * per_day[ordinary_monday]


def test_high_risk_tutors_give_less_notice_and_no_show_more(large):
    profiles = {t.tutor_id: t for t in large.tutors}
    def notice_hours(s):
        info = s["reschedule_info"]
        return (dt.datetime.fromisoformat(info["original_time"]) - dt.datetime.fromisoformat(info["requested_at"])) \
            / dt.timedelta(hours=1)
    by_kind = collections.defaultdict(list)
    for s in large.sessions:
        if s["status"] == "rescheduled" and s["reschedule_info"]["initiator"] == "tutor":
            by_kind[profiles[s["tutor_id"]].kind].append(notice_hours(s) < 24)
    assert statistics.mean(by_kind["chronic"]) > statistics.mean(by_kind["reliable"]) + 0.15
    no_show = collections.defaultdict(list)
    for s in large.sessions:
        no_show[profiles[s["tutor_id"]].kind].append(s["status"] == "no_show")
    assert statistics.mean(no_show["chronic"]) > 2 * statistics.mean(no_show["reliable"])


def test_some_sessions_are_first_sessions_and_new_times_come_later(large):
    assert 0.05 < statistics.mean(s["is_first_session"] for s in large.sessions) < 0.3
    for s in large.sessions[:2000]:
        if s["status"] == "rescheduled":
            assert s["reschedule_info"]["new_time"] > s["reschedule_info"]["original_time"]


def test_ground_truth_marks_tutors_above_the_threshold_on_the_last_day():
    truth = simulate(seed=1, now=NOW).truth()
    for tutor in truth["tutors"]:
        assert tutor["truly_at_risk"] == (tutor["reschedule_p_at_end"] > 0.15)
    assert "15%" in truth["definition"]


def test_evaluation_counts_hits_misses_and_detection_delay():
    truth = {"tutors": [
        {"tutor_id": "a", "kind": "chronic", "truly_at_risk": True, "change_day": None},
        {"tutor_id": "b", "kind": "deteriorating", "truly_at_risk": True, "change_day": "2026-10-01"},
        {"tutor_id": "c", "kind": "reliable", "truly_at_risk": False, "change_day": None},
        {"tutor_id": "d", "kind": "deteriorating", "truly_at_risk": True, "change_day": "2026-10-20"},
    ]}
    raised = [{"tutor_id": "b", "date": "2026-09-01"}, {"tutor_id": "b", "date": "2026-10-12"},
              {"tutor_id": "c", "date": "2026-11-01"}]
    result = evaluate(truth, flagged={"a", "b", "c"}, raised=raised)
    assert (result.true_positives, result.false_positives, result.false_negatives) == (2, 1, 1)
    assert result.precision == 2 / 3 and result.recall == 2 / 3
    assert result.detection_delays == [11] and result.undetected_deteriorations == 1
