"""Property: any arrival order, in any batches, with duplicates, with rescores run, raced and abandoned at
any point, gives the scores of a from-scratch rebuild."""

import datetime as dt

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from engine.models import RescoreWaiting
from engine.rescoring import claim_waiting, rescore_all, rescore_tutor, rescore_waiting
from engine.storing import store_sessions
from engine.validation import validate_session
from tests.conftest import NOW
from tests.engine.state import derived_state, series_through
from tests.factories import oracle_rate, raw_session
from tests.support.databases import empty_database

LEASE = dt.timedelta(seconds=60)
LAPSED = -dt.timedelta(microseconds=1)  # a lease already over: the worker that claimed died

session_strategy = st.builds(
    lambda tutor, minutes, outcome: (tutor, minutes, outcome),
    st.sampled_from(["t1", "t2", "t3"]),
    st.integers(min_value=-100 * 24 * 60, max_value=60),  # up to 100 days back, or an hour ahead
    st.sampled_from(["completed", "completed", "no_show", "tutor", "tutor", "student"]),
)
# After each batch is stored: nothing, rescore everything waiting, claim a tutor and die holding it,
# or claim a tutor before the batch is stored and finish its rescore after (a store racing a rescore).
actions = st.sampled_from(["none", "rescore", "abandon", "race"])


def to_records(specs):
    records = []
    for index, (tutor, minutes, outcome) in enumerate(specs):
        when = NOW + dt.timedelta(minutes=minutes)
        if outcome in ("tutor", "student"):
            records.append(raw_session(f"s{index}", tutor, when, "rescheduled", outcome))
        else:
            records.append(raw_session(f"s{index}", tutor, when, outcome))
    return records


def batches_of(arrivals, cuts):
    edges = [0, *sorted(set(cuts)), len(arrivals)]
    return [arrivals[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(session_strategy, min_size=1, max_size=40), data=st.data())
def test_any_order_and_batching_with_duplicates_matches_recomputing_from_scratch(database, services, specs, data):
    empty_database(database)
    records = to_records(specs)
    arrivals = data.draw(st.permutations(records + data.draw(st.lists(st.sampled_from(records), max_size=10))))
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=max(len(arrivals) - 1, 1)), max_size=8))
    with database.connection_context():
        for batch in batches_of(arrivals, cuts):
            action = data.draw(actions)
            raced = claim_waiting(services, 1, LEASE) if action == "race" else []
            store_sessions(services, [validate_session(raw) for raw in batch])
            for claim in raced:
                rescore_tutor(services, claim.tutor_id, claim=claim)
            if action == "rescore":
                rescore_waiting(services)
            elif action == "abandon":
                claim_waiting(services, 1, LAPSED)
        rescore_waiting(services)
        assert RescoreWaiting.select().count() == 0
    through = series_through(database)
    incremental = derived_state(database, through)
    for tutor_id, name, value in incremental["metrics"]:
        for days in (7, 30, 90):
            sessions, moved, rate = oracle_rate(records, tutor_id, NOW, days)
            expected = {f"sessions_{days}d": sessions, f"tutor_reschedules_{days}d": moved,
                        f"reschedule_rate_{days}d": rate}
            if name in expected:
                assert value == expected[name], (tutor_id, name)
    rescore_all(services, rebuild=True)
    assert derived_state(database, through) == incremental
