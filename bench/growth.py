"""Benchmark: how the cost of scoring one session and of reading one tutor grows with the data.

Five PostgreSQL databases (see :mod:`bench.growth_data`): the base, 100 tutors x 30 days scored by the
pipeline, and that base grown 10x and 100x by tutors (1,000 and 10,000 tutors) and by history (310 and
3,100 days per tutor). In each, in-process at the seeding's clock:

* **score one session**: a new session of one of 20 active base tutors stored and its tutor rescored
  (``store_sessions`` + ``rescore_waiting``, as a worker's task does): this process's CPU (what a worker
  spends, ``time.process_time``), the wall time (adds the database's), and the statements sent;
* **read one tutor**: ``engine.queries.get_tutor_detail`` (what ``GET /api/tutors/{id}`` serves) and
  ``get_tutor_history`` (``/history``) over the base's 30 days, so every dataset's window holds as many
  days of sessions and only what lies outside it grows (a 90-day window would be a third full in the
  base and full in the grown ones, and measure that instead): wall time. The 90-day read is timed too,
  and held to the same line against 10x by history, the first dataset whose 90 days are all lived.

The datasets are measured in interleaved rounds, so load from elsewhere on the machine falls on all of
them alike; medians are compared with the base. Target: flat, every grown dataset within
``FLAT_RATIO`` x the base's median (and the same statement count). Exit status 1 with ``--strict`` when
a target is missed.

    python -m bench.growth [--repeat 60] [--rounds 6] [--reseed]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field

from bench.growth_data import BASE_DAYS, DATASETS, NOW, Dataset, prepare, settings_for, url_of
from bench.rescore_cost import StatementCounter, session
from bench.targets import Progress, Verdict, add_strict, print_verdicts
from engine import queries
from engine.db import bind_database, release_connections
from engine.rescoring import rescore_waiting
from engine.services import Services, build_services
from engine.storing import store_sessions
from engine.terminal import print_table
from engine.validation import validate_session

FLAT_RATIO = 1.5  # a grown dataset's median within this multiple of the base's counts as flat
SAMPLE_TUTORS = 20
progress = Progress("bench.growth")


@dataclass
class Figures:
    score_cpu: list[float] = field(default_factory=list)  # ms
    score_wall: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    detail: list[float] = field(default_factory=list)
    history: list[float] = field(default_factory=list)
    history_90: list[float] = field(default_factory=list)
    sessions: int = 0
    tutors: int = 0

    def median(self, name: str) -> float:
        return statistics.median(getattr(self, name))


@dataclass
class Subject:
    """A dataset opened for measuring: its services (clock at ``NOW``) and statement counter."""

    dataset: Dataset
    services: Services
    counter: StatementCounter
    figures: Figures = field(default_factory=Figures)


def open_subject(dataset: Dataset) -> Subject:
    services = build_services(settings_for(url_of(dataset))).at(NOW)
    subject = Subject(dataset, services, StatementCounter(services.database))
    with services.database.connection_context():
        cursor = services.database.execute_sql("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM tutors)")
        subject.figures.sessions, subject.figures.tutors = cursor.fetchone()
    return subject


def active_tutors(subject: Subject) -> list[str]:
    """Base tutors with sessions in the base's last week: the ones a new session most likely belongs to."""
    cursor = subject.services.database.execute_sql(
        "SELECT tutor_id FROM tutor_daily_counts WHERE day >= %s AND tutor_id NOT LIKE %s GROUP BY tutor_id "
        "ORDER BY tutor_id LIMIT %s", (NOW.date() - dt.timedelta(days=7), "%-c%", SAMPLE_TUTORS))
    return [tutor_id for (tutor_id,) in cursor.fetchall()]


def measure_once(subject: Subject, tutor_id: str, session_id: str, rng: random.Random, record: bool) -> None:
    services, figures = subject.services, subject.figures
    live = [validate_session(session(session_id, tutor_id, NOW - dt.timedelta(minutes=rng.uniform(5, 60)), rng))]
    statements, cpu, wall = subject.counter.count, time.process_time(), time.perf_counter()
    store_sessions(services, live)
    rescore_waiting(services)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    statements = subject.counter.count - statements
    started = time.perf_counter()
    queries.get_tutor_detail(tutor_id, services.metric_names)
    detail = time.perf_counter() - started
    started = time.perf_counter()
    queries.get_tutor_history(tutor_id, BASE_DAYS, NOW.date(), services.metric_names)
    history = time.perf_counter() - started
    started = time.perf_counter()
    queries.get_tutor_history(tutor_id, queries.DEFAULT_HISTORY_DAYS, NOW.date(), services.metric_names)
    history_90 = time.perf_counter() - started
    if record:
        figures.score_cpu.append(1000 * cpu)
        figures.score_wall.append(1000 * wall)
        figures.statements.append(statements)
        figures.detail.append(1000 * detail)
        figures.history.append(1000 * history)
        figures.history_90.append(1000 * history_90)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=60, help="sessions scored and tutors read per dataset")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds the repeats are spread over")
    parser.add_argument("--reseed", action="store_true", help="rebuild the databases")
    add_strict(parser)
    args = parser.parse_args()
    prepare(DATASETS, args.reseed, progress.say)
    subjects = [open_subject(dataset) for dataset in DATASETS]
    base = subjects[0]
    bind_database(base.services.database)
    with base.services.database.connection_context():
        tutors = active_tutors(base)
    run = uuid.uuid4().hex[:8]  # session ids new to every run: the databases are kept between runs
    rng = random.Random(1)
    per_round = max(1, args.repeat // args.rounds)
    for round_number in range(-1, args.rounds):  # round -1 warms every dataset up, unrecorded
        for subject in subjects:
            bind_database(subject.services.database)
            with subject.services.database.connection_context():
                for i in range(3 if round_number < 0 else per_round):
                    tutor_id = tutors[(round_number * per_round + i) % len(tutors)]
                    measure_once(subject, tutor_id, f"growth-{run}-{round_number}-{i}", rng, round_number >= 0)
        if round_number >= 0:
            progress.say(f"round {round_number + 1}/{args.rounds}: " + ", ".join(
                f"{s.dataset.label} {s.figures.median('score_cpu'):.1f}/{s.figures.median('detail'):.1f} ms"
                for s in subjects) + " (score CPU / read, medians so far)")
    for subject in subjects:
        release_connections(subject.services.database)
    return report(subjects, per_round * args.rounds, args.strict)


def report(subjects: list[Subject], repeat: int, strict: bool) -> int:
    base = subjects[0].figures
    print(f"\nbench.growth: PostgreSQL, in-process at a fixed clock; {repeat} sessions scored and tutors read per "
          f"dataset, medians in ms (x the base); email off")
    rows = []
    for subject in subjects:
        figures, dataset = subject.figures, subject.dataset

        def cell(name: str, figures: Figures = figures) -> str:
            value = figures.median(name)
            return f"{value:.1f} ({value / base.median(name):.2f}x)"

        rows.append([dataset.label.replace("_", " by "), f"{figures.tutors:,}", f"{dataset.days:,}",
                     f"{figures.sessions:,}", cell("score_cpu"), cell("score_wall"),
                     f"{statistics.median(figures.statements):.0f}", cell("detail"), cell("history"),
                     f"{figures.median('history_90'):.1f}"])
    print_table([("data", "left"), ("tutors", "right"), ("days", "right"), ("sessions", "right"),
                 ("score CPU", "right"), ("score wall", "right"), ("statements", "right"),
                 ("read tutor", "right"), (f"read history {BASE_DAYS}d", "right"), ("90d", "right")], rows)
    verdicts = []
    for subject in subjects[1:]:
        figures, label = subject.figures, subject.dataset.label.replace("_", " by ")
        for name, what in (("score_cpu", "score one session, worker CPU"), ("score_wall", "score one session, wall"),
                           ("detail", "read one tutor (GET /api/tutors/{id})"),
                           ("history", f"read one tutor's history ({BASE_DAYS} days)")):
            ratio = figures.median(name) / base.median(name)
            verdicts.append(Verdict(f"{label}: {what}", f"{ratio:.2f}x ({figures.median(name):.1f} ms)",
                                    f"<= {FLAT_RATIO}x the base", ratio <= FLAT_RATIO))
        same = statistics.median(figures.statements) == statistics.median(base.statements)
        verdicts.append(Verdict(f"{label}: statements per scored session",
                                f"{statistics.median(figures.statements):.0f}",
                                f"= the base's {statistics.median(base.statements):.0f}", same))
    lived = {subject.dataset.label: subject.figures for subject in subjects}
    full, longest = lived["10x_history"], lived["100x_history"]
    ratio = longest.median("history_90") / full.median("history_90")
    verdicts.append(Verdict("100x by history: read one tutor's history (90 days), against 10x by history",
                            f"{ratio:.2f}x ({longest.median('history_90'):.1f} ms)", f"<= {FLAT_RATIO}x",
                            ratio <= FLAT_RATIO))
    return print_verdicts("bench.growth: figures and targets (base: 100 tutors x 30 days)", verdicts, strict)


if __name__ == "__main__":
    sys.exit(main())
