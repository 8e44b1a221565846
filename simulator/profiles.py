"""Tutors' latent reliability: who they are, how often they reschedule, and whether they are truly at risk.

Most tutors are reliable; roughly 12% are chronically high-risk; a few deteriorate during
the 90 days and a few recover (as after coaching). No-shows mostly follow the reschedule
propensity, but about 6% of tutors miss sessions whatever their reschedules, and about 10%
handle first sessions with new students badly. Ground truth (docs/simulator.md): each
tutor's latent probability, on the last simulated day, of each behaviour a rule counts:
a tutor reschedule per session, a no-show per session, and a poor first session (moved by
the tutor or missed) per first session.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import asdict, dataclass
from typing import Any

from faker import Faker

KINDS = ("reliable", "moderate", "chronic", "deteriorating", "recovering")
KIND_WEIGHTS = (0.64, 0.13, 0.12, 0.06, 0.05)
# Shares of each kind: the default, and a variant to check a detector on a world it was not tuned on
# (more moderate, chronic and deteriorating tutors; docs/flag-policies.md).
MIXES = {"default": KIND_WEIGHTS, "variant": (0.50, 0.22, 0.14, 0.09, 0.05)}
SUBJECTS = ("Algebra", "Geometry", "Calculus", "Chemistry", "Biology", "Physics", "SAT Prep", "ACT Prep",
            "Essay Writing", "Spanish", "French", "Computer Science", "Statistics", "US History")
REASONS = ("personal", "scheduling conflict", "illness", "emergency", "technical")
RELIABLE_REASONS = (0.25, 0.35, 0.2, 0.1, 0.1)
RISKY_REASONS = (0.42, 0.22, 0.1, 0.12, 0.14)
RAMP_DAYS = 10  # a change of behaviour takes about ten days to settle
AT_RISK_THRESHOLD = 0.15  # of tutor reschedules: decides which reasons a tutor gives
TUTOR_SHARE_OF_RESCHEDULES = 0.982  # PRD §2.1: 98.2% of reschedules are tutor-initiated
NO_SHOW_PRONE_SHARE = 0.06
POOR_FIRST_SESSION_SHARE = 0.10


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
    first_session_extra_p: float = 0.0  # added to moving (half) and missing (half) a first session

    def odds_on(self, day: dt.date, first: bool) -> tuple[float, float]:
        """(P rescheduled by anyone, P no-show) for a session on ``day``; first sessions carry the extra risk."""
        moved = self.reschedule_p_on(day) / TUTOR_SHARE_OF_RESCHEDULES
        missed = self.no_show_p
        if first:  # a first session with a new student
            moved += self.first_session_extra_p / 2 / TUTOR_SHARE_OF_RESCHEDULES
            missed += self.first_session_extra_p / 2
        moved = min(0.95, moved)
        return moved, min(missed, 1 - moved)

    def latent_on(self, day: dt.date) -> dict[str, float]:
        """The probability of each counted behaviour on ``day``, named as the engine counts it."""
        moved, missed = self.odds_on(day, first=False)
        first_moved, first_missed = self.odds_on(day, first=True)
        return {"tutor_reschedules": round(moved * TUTOR_SHARE_OF_RESCHEDULES, 4), "no_shows": round(missed, 4),
                "poor_first_sessions": round(first_moved * TUTOR_SHARE_OF_RESCHEDULES + first_missed, 4)}

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
                      reschedule_p_at_end=round(self.reschedule_p_on(on), 4), truly_at_risk=self.truly_at_risk(on),
                      latent_at_end=self.latent_on(on),
                      latent_changed_on={"tutor_reschedules": self.change_day.isoformat() if self.change_day else None})
        return record


def make_tutors(
    count: int, first_day: dt.date, last_day: dt.date, rng: random.Random, fake: Faker,
    traits: random.Random | None = None, kind_weights: tuple[float, ...] = KIND_WEIGHTS,
) -> list[TutorProfile]:
    """``traits`` draws the no-show-prone and poor-first-session tutors on its own stream, so every
    tutor's profile stays what it was for a seed (their sessions share one stream, so those move)."""
    traits = traits or random.Random(0)
    span = (last_day - first_day).days
    tutors = []
    for index in range(count):
        kind = rng.choices(KINDS, kind_weights)[0]
        base, later, change = _propensity(kind, first_day, span, rng)
        started = first_day - dt.timedelta(days=rng.randint(30, 900)) if rng.random() < 0.85 else \
            first_day + dt.timedelta(days=rng.randint(0, span // 2))  # some tutors joined during the period
        risk = max(base, later)
        no_show_prone = traits.random() < NO_SHOW_PRONE_SHARE
        poor_first = traits.random() < POOR_FIRST_SESSION_SHARE
        prone_p, first_extra = traits.uniform(0.07, 0.15), traits.uniform(0.2, 0.4)
        name = fake.name()  # the main stream is drawn in the order it always was, whatever the traits
        subjects = tuple(rng.sample(SUBJECTS, rng.randint(1, 3)))
        load = rng.paretovariate(2.5)
        usual_no_show_p = min(0.2, 0.008 + 0.22 * risk * rng.uniform(0.6, 1.4))
        tutors.append(TutorProfile(
            tutor_id=f"tutor-{index + 1:05d}",
            name=name,
            subjects=subjects,
            start_date=started,
            kind=kind,
            load=load,
            reschedule_p=base,
            later_reschedule_p=later,
            change_day=change,
            no_show_p=max(prone_p, usual_no_show_p) if no_show_prone else usual_no_show_p,
            last_minute_share=min(0.8, 0.12 + 1.3 * risk * rng.uniform(0.7, 1.3)),
            reason_weights=RISKY_REASONS if risk > AT_RISK_THRESHOLD else RELIABLE_REASONS,
            first_session_extra_p=first_extra if poor_first else 0.0,
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
