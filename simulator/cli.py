"""The simulator's ``tqs`` commands: simulate, evaluate, demo."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine import queries
from engine.accuracy import evaluate_policies, report
from engine.backtest import load_histories
from engine.migrations import migrate
from engine.raterule import FLAG_POLICIES
from engine.services import Services
from engine.terminal import progress_bars
from simulator.demo import run_demo
from simulator.generate import simulate as generate
from simulator.profiles import MIXES
from simulator.replay import ApiError, ApiTarget, live_feed, replay_api, replay_direct, summarize


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    sim = command("simulate", simulate, "generate 90 days of realistic sessions and replay them")
    _generation_options(sim)
    sim.add_argument("--mix", choices=tuple(MIXES), default="default",
                     help="the shares of each kind of tutor (variant: more moderate and risky tutors)")
    sim.add_argument("--via", choices=("api", "direct"), default="direct",
                     help="post over HTTP as Rails would, or feed the pipeline in-process")
    sim.add_argument("--api-url", default="http://127.0.0.1:8000")
    sim.add_argument("--api-key", help="default: the first of TQS_API_KEYS")
    sim.add_argument("--truth", type=Path, help="write each tutor's latent profile and ground truth here")
    sim.add_argument("--out", type=Path, help="also write the generated sessions (a JSON array) here")
    sim.add_argument("--live", type=float, default=0, metavar="RATE",
                     help="after the replay, keep posting RATE new sessions a minute (until Ctrl-C)")
    ev = command("evaluate", evaluate, "each rule's precision, recall, flapping and detection delay against the "
                 "simulator's ground truth, under each flag policy (a replay of the stored counts)")
    ev.add_argument("--truth", type=Path, required=True)
    ev.add_argument("--policy", choices=(*FLAG_POLICIES, "both"), default="both")
    demo = command("demo", demo_command, "the embedded demo: API, worker, dashboard and 90 days of data on SQLite",
                   connect=False)
    _generation_options(demo)
    demo.add_argument("--port", type=int, default=8000, help="the API's port")
    demo.add_argument("--dashboard-port", type=int, default=5006)
    demo.add_argument("--fresh", action="store_true", help="throw away the demo data and generate it again")
    demo.add_argument("--live", type=float, default=6, metavar="RATE", help="new sessions a minute (default 6)")


def _generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tutors", type=int, default=80)
    parser.add_argument("--sessions-per-day", type=float, default=35)
    parser.add_argument("--days", type=int, default=90)


def simulate(services: Services, args: argparse.Namespace) -> int:
    started = time.monotonic()
    simulation = generate(seed=args.seed, tutors=args.tutors, sessions_per_day=args.sessions_per_day, days=args.days,
                          mix=args.mix)
    generated = time.monotonic()
    print(f"generated {len(simulation.sessions)} sessions for {args.tutors} tutors in {generated - started:.1f}s",
          file=sys.stderr)
    if args.truth:
        args.truth.write_text(json.dumps(simulation.truth(), indent=1))
    if args.out:
        args.out.write_text(json.dumps(simulation.sessions))
    try:
        if args.via == "direct":
            migrate(services.database)
            replay_direct(services, simulation.sessions)
            flagged = queries.list_tutors(services.metric_names, flagged=True, limit=1).total
            post = None
            unsent = queries.backlog(services.clock()).emails_unsent
            if unsent:
                print(f"{unsent} email reports wait for `tqs worker` to send them "
                      "(TQS_EMAIL_POLICY=off writes none)", file=sys.stderr)
        else:
            target = ApiTarget(args.api_url, args.api_key or next(iter(services.settings.api_keys), ""))
            replay_api(target, simulation.sessions)
            flagged = target.request("GET", "/api/tutors?flagged=true&limit=1")["total"]
            post = target.post_sessions
    except ApiError as error:
        print(f"tqs simulate: {error}", file=sys.stderr)
        return 1
    print(f"replayed via {args.via} in {time.monotonic() - generated:.1f}s", file=sys.stderr)
    print(summarize(simulation.sessions, flagged, args.tutors))
    if args.live:
        return _live(services, simulation, post, args.live)
    return 0


def _live(services: Services, simulation, post, rate: float) -> int:
    if post is None:
        from engine.ingest import ingest

        def post(sessions):
            ingest(services, sessions)
    stop = threading.Event()
    print(f"posting {rate:g} new sessions a minute; Ctrl-C to stop", file=sys.stderr)
    try:
        posted = live_feed(simulation, post, rate, stop)
    except KeyboardInterrupt:
        stop.set()
        posted = None
    print(f"live feed stopped{'' if posted is None else f' after {posted} sessions'}", file=sys.stderr)
    return 0


def evaluate(services: Services, args: argparse.Namespace) -> int:
    """Replay the stored counts under each flag policy and judge every rule's flags against the truth."""
    try:
        truth = json.loads(args.truth.read_text())
        first_day = dt.date.fromisoformat(truth["first_day"])
    except (OSError, ValueError, KeyError) as exc:
        print(f"tqs evaluate: {args.truth} is not a truth file from tqs simulate --truth: {exc}", file=sys.stderr)
        return 2
    last_day = queries.last_session_day()
    if last_day is None:
        print("tqs evaluate: no sessions are stored: run tqs simulate first", file=sys.stderr)
        return 2
    _, histories = load_histories(services.database, first_day, last_day)
    policies = FLAG_POLICIES if args.policy == "both" else (args.policy,)
    with progress_bars() as progress:
        results, unjudged = evaluate_policies(services.rules, truth, histories, first_day, last_day, policies,
                                              lambda done, total: progress("replay", done, total))
    print(report(results, unjudged))
    return 0


def demo_command(services: Services, args: argparse.Namespace) -> int:
    return run_demo(services.settings.data_dir, args.port, args.fresh, args.seed, args.tutors,
                    args.sessions_per_day, args.live, args.dashboard_port)
