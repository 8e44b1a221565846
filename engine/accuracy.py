"""How right are the flags? Precision and recall of each rule against a ground truth (the simulator's).

The truth (``tqs simulate --truth``, docs/simulator.md) gives every tutor's latent probability, on the last
simulated day, of each behaviour the engine counts (``latent_at_end``). A rule that
declares a rate is judged on the behaviour its rate counts (``Rate.events``): a tutor is
truly at risk for it when that probability, in percent, is above the rule's own
``threshold`` setting. A rule with no such behaviour in the truth, or no threshold, has no
ground truth and is listed as such. Detection delay: for tutors whose behaviour changed
during the period (``latent_changed_on``) and ended at risk, days from the change to the
rule's first flag raised on or after it. Flapping: tutors raised more than twice within 30 days.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.backtest import replay_all
from engine.registry import with_settings
from engine.ruleset import RuleSet


@dataclass(frozen=True)
class Evaluation:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    detection_delays: list[int]
    undetected_deteriorations: int
    flapping: int = 0

    @property
    def precision(self) -> float | None:
        flagged = self.true_positives + self.false_positives
        return None if flagged == 0 else self.true_positives / flagged

    @property
    def recall(self) -> float | None:
        at_risk = self.true_positives + self.false_negatives
        return None if at_risk == 0 else self.true_positives / at_risk

    def report(self) -> str:
        lines = [
            f"precision {_fmt(self.precision)}  recall {_fmt(self.recall)}  "
            f"(TP {self.true_positives}, FP {self.false_positives}, FN {self.false_negatives}, "
            f"TN {self.true_negatives})",
        ]
        if self.detection_delays:
            delays = self.detection_delays
            lines.append(f"deterioration flagged after {statistics.median(delays):.0f} days (median; "
                         f"min {min(delays)}, max {max(delays)}, n={len(delays)})")
        if self.undetected_deteriorations:
            lines.append(f"{self.undetected_deteriorations} deteriorating tutor(s) not flagged yet")
        if self.flapping:
            lines.append(f"{self.flapping} tutor(s) flapping (raised more than twice within 30 days)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Criterion:
    """What "truly at risk" means for one rule: its behaviour's latent probability above its threshold."""

    rule: str
    behaviour: str
    threshold: float

    def describe(self) -> str:
        return f"{self.behaviour} > {self.threshold:g}%"

    def at_risk(self, tutor: Mapping[str, Any]) -> bool:
        return 100 * float(tutor.get("latent_at_end", {}).get(self.behaviour, 0.0)) > self.threshold


def criteria(rules: RuleSet, truth: Mapping[str, Any]) -> tuple[list[Criterion], list[str]]:
    """The rules the truth can judge, and the names of those it cannot."""
    behaviours = {name for tutor in truth["tutors"] for name in tutor.get("latent_at_end", {})}
    judged, unjudged = [], []
    for name, loaded in rules.rules.items():
        rate, threshold = loaded.info.rate, loaded.settings.get("threshold")
        if rate is not None and rate.events in behaviours and isinstance(threshold, int | float):
            judged.append(Criterion(name, rate.events, float(threshold)))
        else:
            unjudged.append(name)
    return judged, unjudged


def evaluate(truth: Mapping[str, Any], criterion: Criterion, flagged: set[str],
             raises: Mapping[str, Iterable[dt.date]], flapping: set[str] = frozenset()) -> Evaluation:
    """Compare one rule's flags at the end (and the days it raised each tutor's) with the ground truth."""
    tutors = truth["tutors"]
    first_raise = {tutor: list(days) for tutor, days in raises.items()}
    at_risk = {t["tutor_id"] for t in tutors if criterion.at_risk(t)}
    everyone = {t["tutor_id"] for t in tutors}
    flagged = flagged & everyone
    delays, undetected = [], 0
    for tutor in tutors:
        changed = (tutor.get("latent_changed_on") or {}).get(criterion.behaviour)
        if not changed or tutor["tutor_id"] not in at_risk:
            continue
        began = dt.date.fromisoformat(changed)
        later = [day for day in first_raise.get(tutor["tutor_id"], []) if day >= began]
        if later:
            delays.append((min(later) - began).days)
        else:
            undetected += 1
    return Evaluation(
        true_positives=len(flagged & at_risk), false_positives=len(flagged - at_risk),
        false_negatives=len(at_risk - flagged), true_negatives=len(everyone - at_risk - flagged),
        detection_delays=delays, undetected_deteriorations=undetected, flapping=len(flapping & everyone),
    )


def report(results: Mapping[tuple[Criterion, str], Evaluation], unjudged: list[str]) -> str:
    """A table, one row per rule and policy, then each one's detection delay and flapping."""
    header = (f"{'rule':<18} {'policy':<9} {'truly at risk when':<26} {'precision':>9} {'recall':>6}   TP   FP   FN"
              f"    TN  flapping  median delay")
    lines = [header]
    for (criterion, policy), result in results.items():
        delays = result.detection_delays
        delay = f"{statistics.median(delays):.0f} days (n={len(delays)})" if delays else "-"
        lines.append(f"{criterion.rule:<18} {policy:<9} {criterion.describe():<26} {_fmt(result.precision):>9} "
                     f"{_fmt(result.recall):>6} {result.true_positives:>4} {result.false_positives:>4} "
                     f"{result.false_negatives:>4} {result.true_negatives:>5} {result.flapping:>9}  {delay}")
    for (criterion, policy), result in results.items():
        extra = result.report().split("\n")[1:]
        lines += [f"{criterion.rule} ({policy}): {line}" for line in extra]
    lines += [f"{name}: no ground truth (the simulator does not model what it counts)" for name in unjudged]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def evaluate_policies(rules: RuleSet, truth: Mapping[str, Any], histories: list, first_day: dt.date,
                      last_day: dt.date, policies: Iterable[str],
                      progress: Callable[[int, int], None] | None = None
                      ) -> tuple[dict[tuple[Criterion, str], Evaluation], list[str]]:
    """Each judged rule replayed under each flag policy (the rule's other settings as they are), and judged."""
    judged, unjudged = criteria(rules, truth)
    runs = [(c, policy) for c in judged for policy in policies]
    results = {}
    for index, (criterion, policy) in enumerate(runs):
        ruleset = with_settings(rules, criterion.rule, {"flag_policy": policy}) \
            if "flag_policy" in rules.rules[criterion.rule].settings else rules
        part = None if progress is None else (
            lambda done, total, index=index: progress(index * total + done, len(runs) * total))
        outcome = replay_all(ruleset, criterion.rule, histories, first_day, last_day, policy, part)
        results[(criterion, policy)] = evaluate(truth, criterion, outcome.flagged_now, outcome.raises,
                                                outcome.flapping)
    return results, unjudged
