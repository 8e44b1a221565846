"""Claims and leases around a rescore: a claim that lapsed and was taken again never skips a newer change."""

import datetime as dt

from engine.models import RescoreWaiting
from engine.rescoring import claim_waiting, rescore_all, rescore_tutor
from engine.storing import store_sessions
from tests.conftest import NOW
from tests.engine.state import derived_state, series_through
from tests.factories import session

LEASE = dt.timedelta(seconds=60)
LAPSED = -dt.timedelta(microseconds=1)  # a lease already over: its worker is slow, or dead


def test_two_claims_of_one_tutor_leave_no_change_unscored(database, services):
    with database.connection_context():
        store_sessions(services, [session("late", "t1", NOW - dt.timedelta(days=20), "rescheduled", "tutor")])
        [slow] = claim_waiting(services, 1, LAPSED)  # worker A's lease runs out before it starts
        [taken_over] = claim_waiting(services, 1, LEASE)  # so worker B claims the same tutor
        assert rescore_tutor(services, "t1", claim=slow) is not None  # A finishes after all
        store_sessions(services, [session("earlier", "t1", NOW - dt.timedelta(days=25), "rescheduled", "tutor"),
                                  session("other", "t1", NOW - dt.timedelta(days=24))])
        done = rescore_tutor(services, "t1", claim=taken_over)  # B, holding a claim older than this change
        assert done is not None and done.days == 26  # from the earlier day the new change touched
        assert RescoreWaiting.select().count() == 0
    through = series_through(database)
    coalesced = derived_state(database, through)
    rescore_all(services, rebuild=True)
    assert derived_state(database, through) == coalesced


def test_a_claim_whose_tutor_was_rescored_meanwhile_does_nothing(database, services):
    with database.connection_context():
        store_sessions(services, [session("s1", "t1", NOW - dt.timedelta(days=2))])
        [slow] = claim_waiting(services, 1, LAPSED)
        [taken_over] = claim_waiting(services, 1, LEASE)
        assert rescore_tutor(services, "t1", claim=taken_over) is not None
        assert rescore_tutor(services, "t1", claim=slow) is None


def test_while_busy_a_change_further_back_waits_longer_for_more_of_its_sessions(database, services):
    delay = dt.timedelta(seconds=1)
    with database.connection_context():
        store_sessions(services, [session("recent", "t-recent", NOW - dt.timedelta(days=2)),
                                  session("month", "t-month", NOW - dt.timedelta(days=20)),
                                  session("old", "t-old", NOW - dt.timedelta(days=60))])

        def due_after(waited: dt.timedelta) -> list[str]:
            claims = claim_waiting(services.at(NOW + waited), 10, LAPSED, delay)  # lapsed: claimable again
            return sorted(claim.tutor_id for claim in claims)

        assert len(claim_waiting(services, 10, LAPSED)) == 3  # no delay (an idle queue): all due at once
        assert due_after(0.5 * delay) == []
        assert due_after(1 * delay) == ["t-recent"]
        assert due_after(2 * delay) == ["t-month", "t-recent"]
        assert due_after(4 * delay) == ["t-month", "t-old", "t-recent"]
