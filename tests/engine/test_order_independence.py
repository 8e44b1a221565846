"""Property: any arrival order, with duplicates, gives the scores of a from-scratch rebuild."""

import datetime as dt

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from engine.models import MODELS
from engine.pipeline import process_session, rescore_all
from engine.validation import validate_session
from tests.conftest import NOW
from tests.engine.state import derived_state, series_through
from tests.factories import oracle_rate, raw_session

session_strategy = st.builds(
    lambda tutor, minutes, outcome: (tutor, minutes, outcome),
    st.sampled_from(["t1", "t2"]),
    st.integers(min_value=-100 * 24 * 60, max_value=60),  # up to 100 days back, or an hour ahead
    st.sampled_from(["completed", "completed", "no_show", "tutor", "tutor", "student"]),
)


def to_records(specs):
    records = []
    for index, (tutor, minutes, outcome) in enumerate(specs):
        when = NOW + dt.timedelta(minutes=minutes)
        if outcome in ("tutor", "student"):
            records.append(raw_session(f"s{index}", tutor, when, "rescheduled", outcome))
        else:
            records.append(raw_session(f"s{index}", tutor, when, outcome))
    return records


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(session_strategy, min_size=1, max_size=40), data=st.data())
def test_any_order_with_duplicates_matches_recomputing_from_scratch(database, pm, settings, specs, data):
    with database.connection_context(), database.atomic():
        for model in reversed(MODELS):
            model.delete().execute()
    records = to_records(specs)
    arrivals = data.draw(st.permutations(records + data.draw(st.lists(st.sampled_from(records), max_size=10))))
    for raw in arrivals:
        process_session(database, pm, settings, validate_session(raw), NOW)
    through = series_through(database)
    incremental = derived_state(database, through)
    for tutor_id, name, value in incremental["metrics"]:
        for days in (7, 30, 90):
            sessions, moved, rate = oracle_rate(records, tutor_id, NOW, days)
            expected = {f"sessions_{days}d": sessions, f"tutor_reschedules_{days}d": moved,
                        f"reschedule_rate_{days}d": rate}
            if name in expected:
                assert value == expected[name], (tutor_id, name)
    rescore_all(database, pm, settings, NOW, rebuild=True)
    assert derived_state(database, through) == incremental
