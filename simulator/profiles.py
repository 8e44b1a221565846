"""Tutors' latent reliability: who they are, how often they reschedule, and whether they are truly at risk.

Most tutors are reliable; roughly 12% are chronically high-risk; a few deteriorate during
the 90 days and a few recover (as after coaching). No-shows follow the reschedule
propensity. Ground truth (documented in docs/simulator.md): a tutor is *truly at risk*
when their latent tutor-initiated reschedule probability on the last simulated day is
above the flag threshold (15%).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import asdict, dataclass
from typing import Any

from faker import Faker

KINDS = ("reliable", "moderate", "chronic", "deteriorating", "recovering")
KIND_WEIGHTS = (0.64, 0.13, 0.12, 0.06, 0.05)
SUBJECTS = ("Algebra", "Geometry", "Calculus", "Chemistry", "Biology", "Physics", "SAT Prep", "ACT Prep",
            "Essay Writing", "Spanish", "French", "Computer Science", "Statistics", "US History")
REASONS = ("personal", "scheduling conflict", "illness", "emergency", "technical")
RELIABLE_REASONS = (0.25, 0.35, 0.2, 0.1, 0.1)
RISKY_REASONS = (0.42, 0.22, 0.1, 0.12, 0.14)
RAMP_DAYS = 10  # a change of behaviour takes about ten days to settle
AT_RISK_THRESHOLD = 0.15


@dataclass(frozen=True)
class TutorProfile:
    tutor_id: str
    name: str
    subjects: tuple[str, ...]
    start_date: dt.date
    kind: str
    load: float  # relative share of sessions
    reschedule_p: float  # latent probability that a session is rescheduled by the tutor
    later_reschedule_p: float  # after a change (deteriorating or recovering); equal otherwise
    change_day: dt.date | None
    no_show_p: float
    last_minute_share: float  # share of the tutor's reschedules asked for with under 24 hours' notice
    reason_weights: tuple[float, ...]

    def reschedule_p_on(self, day: dt.date) -> float:
        """The latent probability on a day: a ramp from the old to the new behaviour after ``change_day``."""
        if self.change_day is None or day <= self.change_day:
            return self.reschedule_p
        progress = min(1.0, (day - self.change_day).days / RAMP_DAYS)
        return self.reschedule_p + progress * (self.later_reschedule_p - self.reschedule_p)

    def truly_at_risk(self, on: dt.date) -> bool:
        return self.reschedule_p_on(on) > AT_RISK_THRESHOLD

    def truth(self, on: dt.date) -> dict[str, Any]:
        record = asdict(self)
        record.update(start_date=self.start_date.isoformat(),
                      change_day=self.change_day.isoformat() if self.change_day else None,
                      subjects=list(self.subjects), reason_weights=dict(zip(REASONS, self.reason_weights, strict=True)),
                      reschedule_p_at_end=round(self.reschedule_p_on(on), 4), truly_at_risk=self.truly_at_risk(on))
        return record


def make_tutors(
    count: int, first_day: dt.date, last_day: dt.date, rng: random.Random, fake: Faker
) -> list[TutorProfile]:
    span = (last_day - first_day).days
    tutors = []
    for index in range(count):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        base, later, change = _propensity(kind, first_day, span, rng)
        started = first_day - dt.timedelta(days=rng.randint(30, 900)) if rng.random() < 0.85 else \
            first_day + dt.timedelta(days=rng.randint(0, span // 2))  # some tutors joined during the period
        risk = max(base, later)
        tutors.append(TutorProfile(
            tutor_id=f"tutor-{index + 1:05d}",
            name=fake.name(),
            subjects=tuple(rng.sample(SUBJECTS, rng.randint(1, 3))),
            start_date=started,
            kind=kind,
            load=rng.paretovariate(2.5),
            reschedule_p=base,
            later_reschedule_p=later,
            change_day=change,
            no_show_p=min(0.2, 0.008 + 0.22 * risk * rng.uniform(0.6, 1.4)),
            last_minute_share=min(0.8, 0.12 + 1.3 * risk * rng.uniform(0.7, 1.3)),
            reason_weights=RISKY_REASONS if risk > AT_RISK_THRESHOLD else RELIABLE_REASONS,
        ))
    return tutors


def _propensity(kind: str, first_day: dt.date, span: int, rng: random.Random) -> tuple[float, float, dt.date | None]:
    reliable = min(0.08, rng.betavariate(1.6, 70))
    if kind == "reliable":
        return reliable, reliable, None
    if kind == "moderate":
        p = rng.uniform(0.05, 0.1)
        return p, p, None
    if kind == "chronic":
        p = rng.uniform(0.22, 0.42)
        return p, p, None
    if kind == "deteriorating":
        return reliable, rng.uniform(0.25, 0.45), first_day + dt.timedelta(days=rng.randint(span // 3, span - 20))
    return rng.uniform(0.25, 0.42), reliable, first_day + dt.timedelta(days=rng.randint(10, span // 2 - 5))
