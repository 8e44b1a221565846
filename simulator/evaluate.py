"""How right are the flags? Precision and recall against the simulator's ground truth, and how fast.

Ground truth (``tqs simulate --truth``) marks a tutor truly at risk when their latent
tutor-initiated reschedule probability on the last simulated day is above 15%.
Detection delay: for tutors who deteriorated during the period, days from the start of
the deterioration to the first flag raised on or after it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


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
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        lines = [
            f"precision {fmt(self.precision)}  recall {fmt(self.recall)}  "
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


def evaluate(truth: dict[str, Any], flagged: set[str], raised: Iterable[dict[str, Any]]) -> Evaluation:
    """Compare the current flags (and the raise events) with the ground truth."""
    tutors = truth["tutors"]
    first_raise: dict[str, list[dt.date]] = {}
    for event in raised:
        first_raise.setdefault(event["tutor_id"], []).append(dt.date.fromisoformat(event["date"]))
    at_risk = {t["tutor_id"] for t in tutors if t["truly_at_risk"]}
    everyone = {t["tutor_id"] for t in tutors}
    delays, undetected = [], 0
    for tutor in tutors:
        if tutor["kind"] != "deteriorating" or not tutor["truly_at_risk"]:
            continue
        began = dt.date.fromisoformat(tutor["change_day"])
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
