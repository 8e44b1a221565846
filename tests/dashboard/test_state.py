"""The view state and the URL: a link reproduces the view, and a bad value never breaks the page."""

from urllib.parse import parse_qsl

import param

from dashboard.state import DEFAULT_SORT, DashboardState


class FakeLocation(param.Parameterized):
    """Stands in for ``pn.state.location``: only its ``search`` parameter is used."""

    search = param.String(default="")


def test_every_valid_value_is_taken_from_the_query():
    state = DashboardState()
    state.apply_query({"window": "7", "risk": "flagged", "q": "moreno", "sort": "rate", "page": "3",
                       "tutor": "t-alice", "rate": "no_show_rate"})
    assert (state.window, state.risk, state.search, state.sort, state.page, state.tutor, state.measure) == (
        7, "flagged", "moreno", "rate", 3, "t-alice", "no_show_rate")


def test_bad_values_are_ignored_one_by_one():
    state = DashboardState()
    state.apply_query({"window": "14", "risk": "maybe", "sort": "salary", "page": "0", "tutor": "x\x00y",
                       "q": "bob", "rate": "<script>"})
    assert (state.window, state.risk, state.sort, state.page, state.tutor) == (30, "all", DEFAULT_SORT, 1, "")
    assert state.measure == ""
    assert state.search == "bob"


def test_ids_and_searches_stay_text():
    state = DashboardState()
    state.apply_query({"tutor": "0042", "q": "true"})
    assert state.tutor == "0042" and state.search == "true"


def test_the_url_follows_the_state_and_the_state_follows_the_url():
    location = FakeLocation(search="?tutor=0042&window=90")
    state = DashboardState()
    state.bind_location(location)
    assert state.tutor == "0042" and state.window == 90
    state.param.update(risk="flagged", page=2)
    assert dict(parse_qsl(location.search.lstrip("?"), keep_blank_values=True)) == {
        "window": "90", "rate": "", "risk": "flagged", "q": "", "sort": DEFAULT_SORT, "page": "2", "tutor": "0042"}
    state.measure = "no_show_rate"
    assert "rate=no_show_rate" in location.search
    location.search = "?tutor=&window=7"
    assert state.tutor == "" and state.window == 7


def test_a_link_to_a_tutor_keeps_the_rest_of_the_view():
    state = DashboardState(window=7, risk="flagged", search="a b")
    query = dict(parse_qsl(state.query_string(tutor="t&1").lstrip("?")))
    assert query == {"window": "7", "risk": "flagged", "q": "a b", "sort": DEFAULT_SORT, "page": "1",
                     "tutor": "t&1"}
