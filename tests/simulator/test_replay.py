"""Replaying through the API (gunicorn + worker) and directly gives the same scores and history."""

import datetime as dt

from engine.config import Settings
from engine.db import bind_database, open_database, release_connections
from engine.migrations import migrate
from engine.models import RiskEvent, ScoreSnapshot
from engine.queries import list_tutors
from engine.registry import load_rules
from engine.rescoring import rescore_all
from engine.services import Services
from simulator.generate import simulate
from simulator.replay import ApiTarget, replay_api, replay_direct
from tests.support.stack import API_KEY

AS_OF = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=5)


def scored_state(database, rules, settings):
    """Everything an admin sees, rolled forward to one common moment so the two runs compare exactly."""
    bind_database(database)
    migrate(database)
    rescore_all(Services(settings, database, rules, clock=lambda: AS_OF))
    with database.connection_context():
        tutors = [{k: v for k, v in t.items() if k != "updated_at"}
                  for t in list_tutors(rules.metric_names, sort="tutor_id", limit=500).tutors]
        snapshots = sorted((s.tutor_id, s.day, repr(sorted(s.metrics.items())), s.flagged)
                           for s in ScoreSnapshot.select())
        events = sorted((e.tutor_id, e.rule, e.kind, e.day, repr(e.explanation)) for e in RiskEvent.select())
    return tutors, snapshots, events


def test_api_and_direct_replays_give_identical_scores_and_history(sqlite_database, make_stack, tmp_path):
    simulation = simulate(seed=5, tutors=25, sessions_per_day=12, days=60)
    api_db, api_url = sqlite_database
    stack = make_stack(api_db, api_url, f"sqlite:///{tmp_path / 'queue.db'}")
    replay_api(ApiTarget(stack.client.base_url, API_KEY), simulation.sessions, batch=100)
    stack.stop()

    settings = Settings(data_dir=tmp_path)
    rules = load_rules(settings)
    direct_db = bind_database(open_database(f"sqlite:///{tmp_path / 'direct.db'}"))
    migrate(direct_db)
    replay_direct(Services(settings, direct_db, rules), simulation.sessions, batch=100)

    via_api = scored_state(api_db, rules, settings)
    direct = scored_state(direct_db, rules, settings)
    release_connections(direct_db)
    assert len(via_api[0]) == 25 and via_api[1] and via_api[2]
    assert via_api == direct
