"""Benchmark: both flag policies against the simulator's ground truth, pooled over seeds.

For each world (volume, mix of tutors, seeds) the simulator's sessions are stored through the
product's own storing path into a throwaway SQLite database, then ``tqs evaluate``'s replay
(``engine.accuracy.evaluate_policies``) judges every rule under ``rate`` and ``evidence``.
Counts are pooled over the seeds (precision = all true positives / all flags), delays are
pooled too. Worlds: the default volume (35 sessions a day, 80 tutors) and 3,000 a day on
seeds 1-5, the same on seeds never tuned on, the generator's variant mix (150 tutors), and
the volumes in between, to say what volume a target needs.

    python -m bench.flag_policies [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.accuracy import Evaluation, evaluate, evaluate_policies
from engine.backtest import load_histories, replay_all
from engine.config import Settings
from engine.db import bind_database, open_database
from engine.migrations import migrate
from engine.queries import last_session_day
from engine.raterule import FLAG_POLICIES
from engine.registry import load_rules, with_settings
from engine.services import Services
from engine.storing import store_sessions
from engine.validation import validate_session
from engine.windows import end_of_day
from simulator.generate import simulate

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
STORE_BATCH = 1000


@dataclass(frozen=True)
class World:
    label: str
    seeds: tuple[int, ...]
    sessions_per_day: float
    tutors: int = 80
    mix: str = "default"
    confidences: tuple[float, ...] = ()  # also the first rule under evidence at these confidences: the trade-off


@dataclass
class Pooled:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    flapping: int = 0
    delays: list[int] = field(default_factory=list)
    undetected: int = 0
    hidden: int = 0  # truly at risk, yet neither the 30- nor the 90-day rate is above the threshold
    at_risk: int = 0

    def add(self, result: Evaluation) -> None:
        self.tp += result.true_positives
        self.fp += result.false_positives
        self.fn += result.false_negatives
        self.flapping += result.flapping
        self.delays += result.detection_delays
        self.undetected += result.undetected_deteriorations

    def row(self) -> str:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else None
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else None
        delay = f"{statistics.median(self.delays):g} (n={len(self.delays)}, {self.undetected} not yet)" \
            if self.delays else "-"
        return (f"| {_fmt(precision)} | {_fmt(recall)} | {self.tp} / {self.fp} / {self.fn} | {self.flapping} | {delay} "
                f"| {self.hidden} of {self.at_risk} |")


def worlds(quick: bool) -> list[World]:
    seeds, held_out = (1, 2, 3, 4, 5), (6, 7, 8, 9, 10)
    if quick:
        return [World("35/day, seeds 1-2", (1, 2), 35), World("3000/day, seed 1", (1,), 3000)]
    return [
        World("35/day (default), seeds 1-5", seeds, 35, confidences=(80.0, 85.0, 95.0, 99.0)),
        World("3000/day, seeds 1-5", seeds, 3000),
        World("35/day, held-out seeds 6-10", held_out, 35),
        World("3000/day, held-out seeds 6-10", held_out, 3000),
        World("variant mix, 150 tutors, 50/day, seeds 1-5", seeds, 50, 150, "variant"),
        World("variant mix, 150 tutors, 3000/day, seeds 1-5", seeds, 3000, 150, "variant"),
        World("70/day, seeds 1-5", seeds, 70),
        World("140/day, seeds 1-5", seeds, 140),
        World("280/day, seeds 1-5", seeds, 280),
    ]


def judge(world: World, seed: int, workdir: Path) -> dict:
    """One seed of one world: store its sessions, replay both policies, judge them."""
    started = time.perf_counter()
    simulation = simulate(seed=seed, tutors=world.tutors, sessions_per_day=world.sessions_per_day, now=NOW,
                          mix=world.mix)
    url = f"sqlite:///{workdir / f'{world.mix}-{world.sessions_per_day:g}-{world.tutors}-{seed}.db'}"
    database = bind_database(open_database(url))
    migrate(database)
    settings = Settings(database_url=url, data_dir=workdir)
    rules = load_rules(settings)
    services = Services(settings, database, rules, clock=lambda: NOW)
    records = [validate_session(raw) for raw in simulation.sessions]
    with database.connection_context():
        for start in range(0, len(records), STORE_BATCH):
            store_sessions(services, records[start:start + STORE_BATCH])
        last_day = last_session_day()
    truth = simulation.truth()
    first_day = dt.date.fromisoformat(truth["first_day"])
    _, histories = load_histories(database, first_day, last_day)
    results, _ = evaluate_policies(rules, truth, histories, first_day, last_day, FLAG_POLICIES)
    first = next(iter(results))[0]
    for confidence in world.confidences:  # the first rule's evidence policy at other confidences
        tried = with_settings(rules, first.rule, {"flag_policy": "evidence", "confidence": str(confidence)})
        outcome = replay_all(tried, first.rule, histories, first_day, last_day, "evidence")
        results[(first, f"evidence at {confidence:g}%")] = evaluate(truth, first, outcome.flagged_now, outcome.raises,
                                                                   outcome.flapping)
    hidden = {criterion.rule: _hidden(rules, criterion, truth, histories, last_day)
              for criterion, _ in results}
    database.close()
    print(f"  {world.label}: seed {seed} done, {len(records):,} sessions, {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return {(criterion.rule, criterion.describe(), policy): (result, hidden[criterion.rule])
            for (criterion, policy), result in results.items()}


def _hidden(rules, criterion, truth: dict, histories: list, last_day: dt.date) -> tuple[int, int]:
    """(truly at-risk tutors whose observed 30- and 90-day rates are both at or below the threshold, truly at
    risk): what their own sessions show is what a moderate tutor's show."""
    at_risk = {t["tutor_id"] for t in truth["tutors"] if criterion.at_risk(t)}
    rate = rules.rules[criterion.rule].info.rate
    hidden = 0
    for history in histories:
        if history.tutor_id not in at_risk:
            continue
        metrics = rules.assess(criterion.rule, history, end_of_day(last_day), False).metrics
        rates = [metrics.get(rate.metric(days)) for days in (30, 90)]
        if all(r is None or r <= criterion.threshold for r in rates):
            hidden += 1
    return hidden, len(at_risk)


def run(chosen: Iterable[World]) -> str:
    lines = []
    with tempfile.TemporaryDirectory(prefix="tq-flag-policies-") as tmp:
        for world in chosen:
            pooled: dict[tuple[str, str, str], Pooled] = {}
            for seed in world.seeds:
                for key, (result, (hidden, at_risk)) in judge(world, seed, Path(tmp)).items():
                    pool = pooled.setdefault(key, Pooled())
                    pool.add(result)
                    pool.hidden += hidden
                    pool.at_risk += at_risk
            lines += ["", f"### {world.label}", "",
                      "| rule | truly at risk when | policy | precision | recall | TP / FP / FN | flapping tutors "
                      "| median days to flag a deterioration | at risk, yet 30- and 90-day rates at or below the "
                      "threshold |",
                      "|---|---|---|---|---|---|---|---|---|"]
            lines += [f"| {rule} | {question} | {policy} {pool.row()}"
                      for (rule, question, policy), pool in pooled.items()]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small worlds only (a smoke run)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(run(worlds(args.quick)))
    print(f"\n(bench.flag_policies took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
