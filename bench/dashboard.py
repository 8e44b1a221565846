"""Benchmark: how fast the dashboard opens in Chromium, at 100, 1,000 and 10,000 tutors.

For each size, a PostgreSQL database is seeded once with 90 days of simulated sessions
(0.3 a tutor a day: 3,000 a day at 10,000 tutors, the PRD's volume) through the real
pipeline, and kept for later runs (``--reseed`` rebuilds it). ``tqs dashboard`` serves it;
Playwright drives Debian's Chromium and measures, in wall-clock seconds:

* login -> table: from submitting the login form to the first tutor row on screen;
* link -> chart: from opening ``/?tutor=ID`` (signed in) to the tutor's chart drawn;

each **cold** (a new browser profile: empty cache; for the link, signed in without loading
a page) and **warm** (a returning admin: cache kept, signed in again / link opened again),
``--runs`` times; the median and the worst are
reported, with the page weight of a cold login (bytes over HTTP as transferred and as
decoded, plus the document sent over the websocket). Progress goes to stderr, the table to
stdout. Usage:

    python -m bench.dashboard [--tutors 100,1000,10000] [--runs 5] [--reseed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2

from bench import SEEDED_SECRET_KEY
from dashboard.browser_driver import CHART, TABLE_ROW, first_seen_seconds, launch, log_in, record_first_seen
from engine.children import Service, answers, free_port, tqs_argv, wait_until
from engine.config import Settings
from engine.db import release_connections
from engine.ingest import ingest
from engine.migrations import migrate
from engine.services import build_services
from engine.terminal import progress_bars
from engine.throwaway import admin_url
from simulator.generate import simulate

PASSWORD = "bench-password"
SESSIONS_PER_TUTOR_DAY = 0.3
SEED_CHUNK = 2000  # sessions stored per transaction; each tutor is rescored once at the end


@dataclass
class PageWeight:
    transferred: int = 0
    decoded: int = 0
    websocket: int = 0
    requests: int = 0


@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    weight: PageWeight | None = None

    def add(self, name: str, seconds: float) -> None:
        self.samples[name].append(seconds)

    def cell(self, name: str) -> str:
        values = self.samples[name]
        return f"{statistics.median(values):.2f} / {max(values):.2f}"


def database_url(tutors: int) -> str:
    return urlunparse(urlparse(admin_url())._replace(path=f"/tqs_bench_dashboard_{tutors}"))


def seeded(url: str, tutors: int) -> bool:
    try:
        with psycopg2.connect(url, connect_timeout=3) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM tutors")
            return cursor.fetchone()[0] == tutors
    except psycopg2.Error:
        return False


def seed(url: str, tutors: int) -> None:
    name = urlparse(url).path.lstrip("/")
    admin = psycopg2.connect(admin_url())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    started = time.monotonic()
    simulation = simulate(seed=1, tutors=tutors, sessions_per_day=tutors * SESSIONS_PER_TUTOR_DAY)
    print(f"generated {len(simulation.sessions):,} sessions for {tutors:,} tutors in "
          f"{time.monotonic() - started:.0f}s", file=sys.stderr)
    services = build_services(Settings(database_url=url, secret_keys=(SEEDED_SECRET_KEY,))).at(simulation.now)
    with services.database.connection_context():
        migrate(services.database)
    with progress_bars() as progress:
        ingest(services, simulation.sessions, batch=SEED_CHUNK, progress=progress)
    release_connections(services.database)


def riskiest_tutor(url: str) -> str:
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT tutor_id FROM tutors ORDER BY risk_score DESC, tutor_id LIMIT 1")
        return cursor.fetchone()[0]


def watch_weight(context, page) -> PageWeight:
    """Count what a page receives, through the browser's own network accounting (CDP)."""
    weight = PageWeight()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")

    def finished(event):
        weight.transferred += int(event["encodedDataLength"])
        weight.requests += 1

    def received(event):
        weight.decoded += int(event["dataLength"])

    def frame(event):
        weight.websocket += len(event["response"]["payloadData"])

    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.dataReceived", received)
    cdp.on("Network.webSocketFrameReceived", frame)
    return weight


def sign_in_without_page(context, base: str) -> None:
    """The login cookie, without loading any page into the cache."""
    response = context.request.post(f"{base}/login", form={"username": "admin", "password": PASSWORD},
                                    max_redirects=0)
    assert response.status == 302, f"login refused: {response.status}"


def new_context(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    record_first_seen(context, {"table": TABLE_ROW, "chart": "canvas"})  # the chart is the page's only canvas
    return context


def timed(timings: Timings, name: str, page, mark: str, started: float) -> None:
    """Record the page's own time to ``mark`` and, as a cross-check, the time the driver saw it."""
    page.wait_for_selector(TABLE_ROW if mark == "table" else CHART, timeout=60_000)
    timings.add(name, first_seen_seconds(page, mark))
    timings.add(name + " (driver)", time.perf_counter() - started)


def measure(browser, base: str, tutor_id: str, runs: int) -> Timings:
    timings = Timings()
    for run in range(runs):
        context = new_context(browser)
        page = context.new_page()
        weight = watch_weight(context, page) if run == 0 else None
        submitted = log_in(page, base, "admin", PASSWORD)
        timed(timings, "cold login -> table", page, "table", submitted)
        if weight is not None:
            page.wait_for_timeout(1000)  # let late requests (fonts, icons) land in the count
            timings.weight = weight
        context.clear_cookies()  # the same admin another day: cache kept, signed out
        again = context.new_page()
        submitted = log_in(again, base, "admin", PASSWORD)
        timed(timings, "warm login -> table", again, "table", submitted)
        link = context.new_page()
        opened = time.perf_counter()
        link.goto(f"{base}/?tutor={tutor_id}")
        timed(timings, "warm link -> chart", link, "chart", opened)
        context.close()

        fresh = new_context(browser)  # an email's link on a new profile: nothing cached
        sign_in_without_page(fresh, base)
        page = fresh.new_page()
        opened = time.perf_counter()
        page.goto(f"{base}/?tutor={tutor_id}")
        timed(timings, "cold link -> chart", page, "chart", opened)
        fresh.close()
        print(f"  run {run + 1}/{runs}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in timings.samples.items()
                                                     if "driver" not in k), file=sys.stderr)
    return timings


def run_size(playwright, tutors: int, runs: int, reseed: bool, logs: Path) -> Timings:
    url = database_url(tutors)
    if reseed or not seeded(url, tutors):
        seed(url, tutors)
    else:
        print(f"reusing {urlparse(url).path.lstrip('/')} ({tutors:,} tutors); --reseed rebuilds it", file=sys.stderr)
    port = free_port()
    env = {**os.environ, "TQS_DATABASE_URL": url, "TQS_DASHBOARD_PASSWORD": PASSWORD, "TQS_DATA_DIR": str(logs),
           "TQS_LOG_LEVEL": "WARNING", "TQS_SECRET_KEY": SEEDED_SECRET_KEY}
    server = Service(f"dashboard-{tutors}", tqs_argv("dashboard", "--port", str(port)), env, logs).start()
    base = f"http://127.0.0.1:{port}"
    browser = launch(playwright)
    try:
        wait_until(lambda: _listening(base), 60, f"the dashboard on {base} (log {server.log_path})")
        warmup = browser.new_context()
        page = warmup.new_page()
        log_in(page, base, "admin", PASSWORD)
        page.wait_for_selector(TABLE_ROW, timeout=60_000)  # the server's first session pays Python's warm-up
        warmup.close()
        tutor_id = riskiest_tutor(url)
        return measure(browser, base, tutor_id, runs)
    finally:
        browser.close()
        server.stop()


def _listening(base: str) -> bool:
    return answers(base + "/login")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tutors", default="100,1000,10000", help="comma-separated sizes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    logs = Path("data/bench")
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[int, Timings] = {}
    with sync_playwright() as playwright:
        for tutors in (int(size) for size in args.tutors.split(",")):
            print(f"== {tutors:,} tutors", file=sys.stderr)
            results[tutors] = run_size(playwright, tutors, args.runs, args.reseed, logs)
    columns = ["cold login -> table", "warm login -> table", "cold link -> chart", "warm link -> chart"]
    for title, suffix in (("in the page's own clock (navigation start to the first frame showing it)", ""),
                          ("as the test driver saw it (adds its polling and process hops)", " (driver)")):
        print(f"\nDashboard in Chromium, seconds, median / worst of {args.runs} runs, {title}")
        print("| tutors | " + " | ".join(columns) + " |")
        print("|---:|" + "---:|" * len(columns))
        for tutors, timings in results.items():
            print(f"| {tutors:,} | " + " | ".join(timings.cell(c + suffix) for c in columns) + " |")
    print("\nPage weight of a cold login (HTTP transferred / decoded; websocket messages, decompressed)")
    for tutors, timings in results.items():
        weight = timings.weight or PageWeight()
        print(f"| {tutors:,} | {weight.transferred / 1e6:.2f} MB / {weight.decoded / 1e6:.2f} MB in "
              f"{weight.requests} requests | {weight.websocket / 1e3:.0f} kB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
