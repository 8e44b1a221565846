"""How right are the flags? Precision and recall of each rule against the simulator's ground truth.

The truth (``tqs simulate --truth``) gives every tutor's latent probability, on the last
simulated day, of each behaviour the engine counts (``latent_at_end``). A rule that
declares a rate is judged on the behaviour its rate counts (``Rate.events``): a tutor is
truly at risk for it when that probability, in percent, is above the rule's own
``threshold`` setting. A rule with no such behaviour in the truth, or no threshold, has no
ground truth and is listed as such. Detection delay: for tutors whose behaviour changed
during the period (``latent_changed_on``) and ended at risk, days from the change to the
rule's first flag raised on or after it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.ruleset import RuleSet


@dataclass(frozen=True)
class Evaluation:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    detection_delays: list[int]
    undetected_deteriorations: int

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
             raised: Iterable[Mapping[str, Any]]) -> Evaluation:
    """Compare one rule's current flags (and its raise events) with the ground truth."""
    tutors = truth["tutors"]
    first_raise: dict[str, list[dt.date]] = {}
    for event in raised:
        if event["rule"] == criterion.rule:
            first_raise.setdefault(event["tutor_id"], []).append(dt.date.fromisoformat(event["date"]))
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
        detection_delays=delays, undetected_deteriorations=undetected,
    )


def evaluate_all(rules: RuleSet, truth: Mapping[str, Any], flagged_by_rule: Mapping[str, set[str]],
                 raised: list[Mapping[str, Any]]) -> tuple[dict[Criterion, Evaluation], list[str]]:
    judged, unjudged = criteria(rules, truth)
    return {c: evaluate(truth, c, flagged_by_rule.get(c.rule, set()), raised) for c in judged}, unjudged


def report(results: Mapping[Criterion, Evaluation], unjudged: list[str]) -> str:
    """A table, one row per rule, then each rule's detection delay."""
    header = f"{'rule':<18} {'truly at risk when':<30} {'precision':>9} {'recall':>6}   TP   FP   FN    TN"
    lines = [header]
    for criterion, result in results.items():
        lines.append(f"{criterion.rule:<18} {criterion.describe():<30} {_fmt(result.precision):>9} "
                     f"{_fmt(result.recall):>6} {result.true_positives:>4} {result.false_positives:>4} "
                     f"{result.false_negatives:>4} {result.true_negatives:>5}")
    for criterion, result in results.items():
        extra = result.report().split("\n")[1:]
        lines += [f"{criterion.rule}: {line}" for line in extra]
    lines += [f"{name}: no ground truth (the simulator does not model what it counts)" for name in unjudged]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
