"""``tqs demo``: the whole product on one machine with nothing installed but Python.

SQLite database and SQLite-backed queue under ``<data dir>/demo``, a worker, the API and
the dashboard as child processes, 90 days of synthetic sessions replayed through the real API, then a
live trickle of new sessions. Ctrl-C stops everything. A second run reuses the data
(``--fresh`` rebuilds it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine.children import Service, answers, tqs_argv
from engine.config import Settings
from simulator.generate import SessionFactory, simulate
from simulator.replay import ApiError, ApiTarget, live_feed, replay_api, summarize


def run_demo(data_dir: Path, port: int, fresh: bool, seed: int, tutors: int, sessions_per_day: float,
             live_rate: float, dashboard_port: int, workers: int = 2) -> int:
    started = time.monotonic()
    demo_dir = data_dir / "demo"
    if fresh and demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True, exist_ok=True)
    state_path = demo_dir / "demo.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    api_key = _secret(demo_dir / "api_key")
    dashboard_password = _secret(demo_dir / "dashboard_password")
    env = {**os.environ, "TQS_DATA_DIR": str(demo_dir),
           "TQS_DATABASE_URL": f"sqlite:///{demo_dir / 'tutor_quality.db'}",
           "TQS_QUEUE_URL": f"sqlite:///{demo_dir / 'queue.db'}", "TQS_API_KEYS": api_key,
           "TQS_SWEEP_INTERVAL_SECONDS": "5", "TQS_DASHBOARD_USER": "admin",
           "TQS_DASHBOARD_PASSWORD": dashboard_password,
           "TQS_DASHBOARD_URL": f"http://127.0.0.1:{dashboard_port}/"}  # the link in every email report
    children = [
        Service("worker", tqs_argv("worker", "--workers", str(workers)), env, demo_dir).start(),
        Service("api", tqs_argv("api", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)), env,
                demo_dir).start(),
        Service("dashboard", tqs_argv("dashboard", "--port", str(dashboard_port)), env, demo_dir).start(),
    ]
    (demo_dir / "demo.pids").write_text("\n".join(str(c.process.pid) for c in children) + "\n")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    target = ApiTarget(f"http://127.0.0.1:{port}", api_key)
    try:
        _wait_for(lambda: _api_answers(target), "API", children, stop)
        if state is None:
            simulation = simulate(seed=seed, tutors=tutors, sessions_per_day=sessions_per_day)
            (demo_dir / "truth.json").write_text(json.dumps(simulation.truth(), indent=1))
            print(f"generated {len(simulation.sessions)} sessions for {tutors} tutors over 90 days (seed {seed})")
            replay_api(target, simulation.sessions)
            state = {"seed": seed, "tutors": tutors, "sessions_per_day": sessions_per_day,
                     "generated_at": simulation.now.isoformat()}
            state_path.write_text(json.dumps(state))
            flagged = target.request("GET", "/api/tutors?flagged=true&limit=1")["total"]
            print(summarize(simulation.sessions, flagged, tutors))
        else:
            print(f"reusing the demo data in {demo_dir} (generated {state['generated_at']}); "
                  "run with --fresh to rebuild it")
            simulation = simulate(seed=state["seed"], tutors=state["tutors"],
                                  sessions_per_day=state["sessions_per_day"],
                                  now=dt.datetime.fromisoformat(state["generated_at"]))
        simulation.factory = SessionFactory(simulation.tutors, simulation.factory.rng,
                                            simulation.factory.students.fake,
                                            prefix=f"live-{int(time.time())}-")
        _wait_for(lambda: _dashboard_answers(dashboard_port), "dashboard", children, stop)
        print(f"\nTutor Quality demo ready in {time.monotonic() - started:.1f}s")
        print(f"  API        http://127.0.0.1:{port}/api/tutors   (docs: http://127.0.0.1:{port}/api/openapi.json)")
        print(f"  API key    {api_key}")
        print(f"  Dashboard  http://127.0.0.1:{dashboard_port}/   (login: admin / {dashboard_password})")
        print(f"  try        curl -H 'Authorization: Bearer {api_key}' 'http://127.0.0.1:{port}/api/tutors?flagged=true'")
        print(f"  data       {demo_dir} (logs: api.log, worker.log, dashboard.log; ground truth: truth.json)")
        print(f"  emails     {_email_destination(env)}")
        print(f"  live       {live_rate:g} new sessions a minute; Ctrl-C stops everything", flush=True)
        if live_rate > 0:
            feed = threading.Thread(target=_feed, args=(simulation, target, live_rate, stop), daemon=True)
            feed.start()
        while not stop.wait(1):
            for child in children:
                if child.process.poll() is not None:
                    print(f"tqs demo: the {child.name} stopped (see {demo_dir / (child.name + '.log')})",
                          file=sys.stderr)
                    return 1
        return 0
    except ApiError as error:
        print(f"tqs demo: {error}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        for child in reversed(children):
            child.stop()
        print("demo stopped", flush=True)


def _email_destination(env: dict[str, str]) -> str:
    """Where the worker sends reports, as the worker's own settings say."""
    settings = Settings.from_env(env)
    endpoint = settings.email_endpoint
    where = f"{endpoint.directory} (one .eml file per report)" if endpoint.scheme == "file" else endpoint.describe()
    return f"{where}; TQS_EMAIL_POLICY={settings.email_policy}"


def _secret(path: Path) -> str:
    """A random secret kept in the demo directory (owner-only), so a second run signs in the same way."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _wait_for(answers: Callable[[], bool], what: str, children: list[Service], stop: threading.Event,
              timeout: float = 60) -> None:
    """Poll until ``answers()``; give up when a child has died or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        if answers():
            return
        if any(child.process.poll() is not None for child in children) or time.monotonic() > deadline:
            raise ApiError(f"the {what} did not start; see the logs in the demo directory")
        time.sleep(0.1)
    raise ApiError("interrupted while starting")


def _api_answers(target: ApiTarget) -> bool:
    try:
        target.request("GET", "/api/health", timeout=2)
        return True
    except ApiError:
        return False


def _dashboard_answers(port: int) -> bool:
    """The dashboard imports Panel and hvPlot, so it listens a few seconds after the API."""
    return answers(f"http://127.0.0.1:{port}/login")


def _feed(simulation, target: ApiTarget, rate: float, stop: threading.Event) -> None:
    try:
        live_feed(simulation, target.post_sessions, rate, stop)
    except ApiError as error:
        if not stop.is_set():
            print(f"tqs demo: live feed stopped: {error}", file=sys.stderr)
