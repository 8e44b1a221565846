"""The generator: deterministic for a seed, with the distributions the PRD describes."""

import collections
import datetime as dt
import statistics

import pytest

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


def test_ground_truth_gives_each_behaviours_latent_probability_on_the_last_day():
    simulation = simulate(seed=1, tutors=300, now=NOW)
    truth = simulation.truth()
    for tutor, profile in zip(truth["tutors"], simulation.tutors, strict=True):
        assert tutor["truly_at_risk"] == (tutor["reschedule_p_at_end"] > 0.15)
        latent = tutor["latent_at_end"]
        assert latent["tutor_reschedules"] == pytest.approx(profile.reschedule_p_on(simulation.last_day), abs=1e-3)
        assert latent["no_shows"] == pytest.approx(profile.no_show_p, abs=1e-3)
        assert latent["poor_first_sessions"] >= latent["tutor_reschedules"] + latent["no_shows"] - 1e-3
    no_show_prone = [t for t in truth["tutors"] if t["latent_at_end"]["no_shows"] > 0.06 and t["kind"] == "reliable"]
    poor_first = [t for t in truth["tutors"] if t["first_session_extra_p"] > 0]
    assert no_show_prone and poor_first  # behaviours apart from rescheduling exist, so the rules can be told apart


def test_first_sessions_of_a_tutor_with_the_trait_go_badly_more_often(large):
    by_id = {t.tutor_id: t for t in large.tutors}

    def poor_share(first: bool, trait: bool) -> float:
        chosen = [s for s in large.sessions if s["is_first_session"] == first
                  and (by_id[s["tutor_id"]].first_session_extra_p > 0) == trait]
        poor = [s for s in chosen if s["status"] == "no_show" or (s["status"] == "rescheduled"
                                                                  and s["reschedule_info"]["initiator"] == "tutor")]
        return len(poor) / len(chosen)

    assert poor_share(first=True, trait=True) > poor_share(first=False, trait=True) + 0.1
    assert abs(poor_share(first=True, trait=False) - poor_share(first=False, trait=False)) < 0.05


def test_evaluation_judges_each_rule_on_its_own_behaviour_and_threshold():
    from engine.accuracy import criteria, evaluate, report
    from engine.config import Settings
    from engine.registry import load_rules

    def tutor(tutor_id, no_shows, reschedules=0.02, changed=None):
        return {"tutor_id": tutor_id, "latent_at_end": {"tutor_reschedules": reschedules, "no_shows": no_shows,
                                                        "poor_first_sessions": 0.05},
                "latent_changed_on": {"tutor_reschedules": changed}}

    truth = {"tutors": [tutor("a", 0.10), tutor("b", 0.08), tutor("c", 0.01), tutor("d", 0.09),
                        tutor("e", 0.01, reschedules=0.3, changed="2026-10-01")]}
    rules = load_rules(Settings())
    judged, unjudged = criteria(rules, truth)
    by_rule = {c.rule: c for c in judged}
    assert set(by_rule) == {"reschedule_rate", "no_show_rate", "first_session"} and unjudged == []
    assert by_rule["no_show_rate"].describe() == "no_shows > 6%"
    result = evaluate(truth, by_rule["no_show_rate"], flagged={"a", "b", "c"},
                      raises={"b": [dt.date(2026, 10, 12)]})
    assert (result.true_positives, result.false_positives, result.false_negatives) == (2, 1, 1)
    assert result.precision == 2 / 3 and result.recall == 2 / 3
    moved = evaluate(truth, by_rule["reschedule_rate"], flagged={"e"},
                     raises={"e": [dt.date(2026, 9, 20), dt.date(2026, 10, 9)]}, flapping={"e", "x"})
    assert moved.detection_delays == [8] and (moved.precision, moved.recall) == (1.0, 1.0)
    assert moved.flapping == 1  # only the tutors the truth knows
    stricter = criteria(load_rules(Settings.from_env({"TQS_RULE_NO_SHOW_RATE_THRESHOLD": "9.5"})), truth)[0]
    assert {c.rule: c for c in stricter}["no_show_rate"].describe() == "no_shows > 9.5%"
    text = report({(c, "rate"): evaluate(truth, c, set(), {}) for c in judged}, ["busy_week"])
    assert "busy_week: no ground truth" in text and text.splitlines()[0].startswith("rule")
