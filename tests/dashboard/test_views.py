"""The views without a browser: set the state as a click would, and check what each view shows.

Every expectation is counted from the seeded plan (tests/dashboard/conftest.py), not read back
from the code under test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess

from dashboard.app import DashboardApp
from dashboard.charts import flagged_spans, rate_chart
from dashboard.detail import TutorDetail, render_body, render_head
from dashboard.header import Header, render_overview
from dashboard.state import SORT_KEYS, DashboardState
from dashboard.tutor_list import PAGE_SIZE, SORT_CHOICES, TutorList
from engine import queries
from engine.ingest import ingest
from tests.conftest import NOW
from tests.dashboard.conftest import PLANS, XSS_NAME
from tests.dashboard.test_state import FakeLocation
from tests.factories import raw_session
from tests.support.processes import tqs_argv


def ids(view: TutorList) -> list[str]:
    return list(view.table.value["tutor_id"])


def expected_rate(tutor_id: str) -> float:
    _, count, moved, _ = PLANS[tutor_id]
    return round(100 * moved / count, 2)


def test_the_list_starts_riskiest_first_in_the_order_of_tqs_tutors(store, database_url, tmp_path):
    view = TutorList(store, DashboardState())
    env = {**os.environ, "TQS_DATABASE_URL": database_url, "TQS_DATA_DIR": str(tmp_path)}
    cli = json.loads(subprocess.run(tqs_argv("tutors", "--json"), env=env, capture_output=True, text=True,
                                    check=True).stdout)
    assert ids(view) == [record["tutor_id"] for record in cli]
    assert ids(view)[:2] == ["t-alice", "t-0042"]  # 40% and 37.5% of enough sessions


def test_risk_filter_search_and_window_change_the_rows(store):
    state = DashboardState()
    view = TutorList(store, state)
    state.risk = "flagged"
    assert set(ids(view)) == {"t-alice", "t-0042"}
    state.risk = "ok"
    assert set(ids(view)) == {"t-bob", "t-carol"}
    state.param.update(risk="all", search="stone")
    assert ids(view) == ["t-bob"]
    state.search = ""
    state.window = 7
    assert view.table.titles["rate"] == "7-day reschedule rate"
    carol = view.table.value.set_index("tutor_id").loc["t-carol"]
    assert "no sessions" in carol["rate"]  # all of Carol's sessions are 60 days old


def test_sorting_by_rate_orders_by_the_windows_rate(store):
    state = DashboardState(sort="rate")
    view = TutorList(store, state)
    assert ids(view) == ["t-bob", "t-0042", "t-alice", "t-carol"]  # 10%, 37.5%, 40%, then no 30-day rate
    state.sort = "-sessions"
    # 10, 10 (ties by id, and descending is ascending reversed: one index read from either end), 8, 0
    assert ids(view) == ["t-bob", "t-alice", "t-0042", "t-carol"]
    assert view.table.sorters == [{"field": "sessions", "dir": "desc"}]


def test_the_sort_menu_offers_every_order_the_headers_give(store):
    assert sorted(SORT_CHOICES.values()) == sorted(f"{d}{key}" for key in SORT_KEYS for d in ("", "-"))
    state = DashboardState()
    view = TutorList(store, state)
    view.sort.value = "rate"
    assert state.sort == "rate" and ids(view)[0] == "t-bob"
    state.sort = "-tutor"  # a header click: the menu follows
    assert view.sort.value == "-tutor"


def test_a_rate_shows_with_its_interval(store):
    view = TutorList(store, DashboardState())
    alice = view.table.value.set_index("tutor_id").loc["t-alice"]
    assert f"{expected_rate('t-alice'):.1f}%" in alice["rate"] and "\u2013" in alice["rate"]
    assert "Flagged" in alice["flag"] and "\u2691" in alice["flag"]  # an icon and a word


def test_pages_come_from_the_database(store, seeded, services):
    extra = more_tutors(services)
    state = DashboardState(sort="tutor")
    view = TutorList(store, state)
    total = len(PLANS) + len(extra)
    assert view.table.total == total and len(view.table.value) == PAGE_SIZE
    state.page = 2
    assert list(view.table.value.index) == list(range(PAGE_SIZE, total))
    assert len(ids(view)) == total - PAGE_SIZE


def more_tutors(services, count: int = PAGE_SIZE + 3) -> list[str]:
    extra = [raw_session(f"p-{i}", f"t-page-{i:02d}", NOW - dt.timedelta(hours=i + 1)) for i in range(count)]
    ingest(services, extra)
    return [s["tutor_id"] for s in extra]


def test_a_page_past_the_end_falls_back_to_the_last_page(store, seeded, services):
    more_tutors(services)
    state = DashboardState(page=9)
    view = TutorList(store, state)
    assert state.page == 2 and len(ids(view)) == len(PLANS) + PAGE_SIZE + 3 - PAGE_SIZE


def test_a_page_past_the_end_of_nothing_shows_the_empty_first_page(store):
    state = DashboardState(search="nobody-matches", page=3)
    view = TutorList(store, state)
    assert state.page == 1 and ids(view) == [] and "none" in view.count.object


def test_a_new_address_sets_the_whole_view_and_keeps_its_page(store, seeded, services):
    more_tutors(services)
    location = FakeLocation(search="?tutor=t-alice&window=7")
    state = DashboardState()
    state.bind_location(location)
    view = TutorList(store, state)
    location.search = "?q=t-page&page=2"
    assert (state.search, state.page, state.tutor, state.window) == ("t-page", 2, "", 30)
    assert view.search.value == "t-page" and len(ids(view)) == 3


def test_names_and_ids_are_escaped_in_the_list(store):
    view = TutorList(store, DashboardState())
    cell = view.table.value.set_index("tutor_id").loc["t-0042"]["tutor"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in cell and "<img" not in cell


def test_the_header_counts_agree_with_the_plan(store):
    header = Header(store, DashboardState(), refresh_seconds=30)
    overview = store.overview(30)
    sessions = sum(count for _, count, _, days_back in PLANS.values() if days_back < 30)
    moved = sum(m for _, _, m, days_back in PLANS.values() if days_back < 30)
    assert overview.measure.name == "reschedule_rate"  # the first rule's rate unless one is chosen
    assert (overview.base, overview.events) == (sessions, moved)
    assert overview.flagged == 2 and overview.tutors == len(PLANS)
    assert overview.scored_today == sum(plan[1] for plan in PLANS.values())
    assert overview.backlog.pending == 0
    html = header._pane.object
    assert f"{100 * moved / sessions:.1f}%" in html and "2 more" in html  # nobody was flagged 7 days ago
    assert "30-day reschedule rate" in html and f"{moved} tutor reschedules in {sessions} sessions" in html
    no_shows = store.overview(30, "no_show_rate")
    assert (no_shows.base, no_shows.events, no_shows.rate) == (sessions, 0, 0.0)


def test_the_backlog_shows_both_the_wait_and_the_failures(store):
    overview = dataclasses.replace(store.overview(30), backlog=queries.Backlog(12, 3, 95.0, 7, 4.0, 1))
    html = render_overview(overview, 30)
    assert "12 waiting" in html and "12 to store, oldest 2 min" in html and "3 sessions failed" in html
    assert "7 tutors to rescore, oldest 4 s" in html and "1 tutor failing to rescore" in html
    assert "email" not in html


def test_the_backlog_names_failed_email_reports(store):
    overview = dataclasses.replace(store.overview(30), backlog=queries.Backlog(0, 0, None, emails_unsent=4,
                                                                               emails_failed=2))
    html = render_overview(overview, 30)
    assert "2 email reports failed" in html and "tqs retry-failed" in html
    assert 'class="tq-kpi tq-alert" data-kpi="backlog"' in html


def test_the_backlog_reads_up_to_date_when_nothing_waits(store):
    html = render_overview(store.overview(30), 30)
    assert "up to date: every session received is scored" in html and "to rescore" not in html


def test_flagged_a_week_ago_follows_the_risk_events(seeded, services, store):
    # Dan was flagged 20 days ago (3 of 5 moved); 30 completed sessions cleared him 3 days ago (3 of 35).
    old = [raw_session(f"d-{i}", "t-dan", NOW - dt.timedelta(days=20, hours=i), "rescheduled" if i < 3 else
                       "completed", "tutor") for i in range(5)]
    recent = [raw_session(f"d-new-{i}", "t-dan", NOW - dt.timedelta(days=3, hours=i)) for i in range(30)]
    ingest(services, old + recent)
    with seeded.connection_context():
        assert queries.flagged_count(on=NOW.date() - dt.timedelta(days=7)) == 1
        assert queries.flagged_count(on=NOW.date() - dt.timedelta(days=2)) == 2  # Alice and t-0042 by then
    assert store.overview(30).flagged_week_ago == 1


def test_detail_shows_the_numbers_the_flag_and_the_advice(store):
    state = DashboardState(tutor="t-alice")
    detail = TutorDetail(store, state)
    assert detail.layout.visible and detail.chart.object is not None
    head = detail.head.object
    assert f"{expected_rate('t-alice'):.1f}%" in head and "Flagged" in head
    body = detail.body.object
    assert "above the 15% threshold" in body  # the risk event, in words
    assert "Raised" in body and "Recent reschedules (last 4)" in body
    assert "traffic &lt;b&gt;jam&lt;/b&gt;" in body and "<b>jam" not in body
    state.tutor = ""
    assert not detail.layout.visible


def test_detail_of_an_unknown_tutor_says_so(store):
    detail = TutorDetail(store, DashboardState(tutor="<nobody>"))
    assert "Unknown tutor" in detail.head.object and "&lt;nobody&gt;" in detail.head.object


def test_detail_escapes_the_name(store):
    story = store.tutor_story("t-0042")
    html = render_head(story, store.measures) + render_body(story)
    assert XSS_NAME not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_flagged_spans_cover_each_run_of_days_the_charted_rule_flagged():
    points = [{"date": f"2026-11-0{d}", "flagged": True, "flags": {"a": d in (2, 3, 6), "b": True}}
              for d in range(1, 7)]
    assert flagged_spans(points, "a") == [(dt.datetime(2026, 11, 2), dt.datetime(2026, 11, 4)),
                                          (dt.datetime(2026, 11, 6), dt.datetime(2026, 11, 7))]


def test_no_chart_when_the_points_do_not_carry_the_rate(store):
    measure = store.measure("no_show_rate")
    assert rate_chart([{"date": "2026-11-01", "flagged": False, "busy_7d": 1}], measure, 6.0) is None
    assert rate_chart([{"date": "2026-11-01", "flagged": False, "no_show_rate_7d": 1.0}], measure, 6.0) is not None


def test_the_detail_shows_every_rules_rate_and_charts_the_riskiest_flagged_rule(store, services):
    ingest(services, [raw_session(f"ns-{i}", "t-alice", NOW - dt.timedelta(days=2, hours=i), "no_show")
                      for i in range(6)])
    state = DashboardState(tutor="t-alice")
    detail = TutorDetail(store, state)
    head = detail.head.object
    assert [m.name for m in store.measures] == ["reschedule_rate", "no_show_rate", "poor_first_session_rate"]
    for name in ("reschedule_rate", "no_show_rate", "poor_first_session_rate"):
        assert f'data-rate="{name}"' in head
    assert "90-day no-show rate" in head and "90-day poor first-session rate" in head
    flags = {flag["rule"]: flag for flag in store.tutor_story("t-alice").detail["flags"]}
    riskiest = max((f for f in flags.values() if f["flagged"]), key=lambda f: f["risk_score"])["rule"]
    assert detail.chart_choice.value == store.measures[[m.rule for m in store.measures].index(riskiest)].name
    assert detail.chart.object is not None and "threshold" in detail.chart_caption.object
    detail.chart_choice.value = "poor_first_session_rate"  # the admin picks another rule's chart
    assert "First sessions" not in detail.chart_caption.object and "first sessions" in detail.chart_caption.object


def test_a_refresh_keeps_the_view_and_shows_new_sessions(store, seeded, services):
    more_tutors(services)
    state = DashboardState(sort="tutor", page=2, tutor="t-alice")
    app = DashboardApp(store, state, refresh_seconds=30)
    before, shown = app.detail.head.object, ids(app.tutors)
    new = raw_session("t-alice-new", "t-alice", NOW - dt.timedelta(hours=2), "rescheduled", "tutor")
    ingest(services, [new])
    app.refresh()
    assert (state.sort, state.page, state.tutor) == ("tutor", 2, "t-alice")
    assert app.detail.head.object != before and "11 sessions" in app.detail.head.object
    assert ids(app.tutors) == shown and app.tutors.table.page == 2


def test_the_flag_history_goes_back_beyond_the_chart(store, seeded, services):
    old = [raw_session(f"e-{i}", "t-ed", NOW - dt.timedelta(days=120, hours=i), "rescheduled" if i < 3 else
                       "completed", "tutor") for i in range(5)]
    ingest(services, old)
    story = store.tutor_story("t-ed")
    raised = (NOW - dt.timedelta(days=120)).date()
    assert [(e["kind"], e["date"]) for e in story.risk_events][0] == ("raised", raised.isoformat())
    assert f"{raised.day} {raised:%b %Y}: " in render_body(story)
