"""Generate 90 days of sessions as the Rails app would post them, deterministic for a seed."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from faker import Faker

from simulator.calendar import day_volume, poisson, start_hour
from simulator.profiles import MIXES, REASONS, TUTOR_SHARE_OF_RESCHEDULES, TutorProfile, make_tutors

LOCAL_ZONE = ZoneInfo("America/New_York")
DURATIONS = ((30, 45, 60, 90), (2, 3, 6, 1))
NEW_STUDENT_SHARE = 0.07


@dataclass
class Simulation:
    seed: int
    first_day: dt.date
    last_day: dt.date
    now: dt.datetime
    tutors: list[TutorProfile]
    sessions: list[dict[str, Any]] = field(default_factory=list)
    factory: SessionFactory | None = None  # keeps generating after the 90 days (--live)
    mix: str = "default"

    def truth(self) -> dict[str, Any]:
        """Each tutor's latent profile and behaviour on the last day (see docs/simulator.md)."""
        return {
            "seed": self.seed, "mix": self.mix, "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "definition": "latent_at_end: each behaviour's probability on last_day (tutor_reschedules and no_shows "
                          "per session, poor_first_sessions per first session); a rule's tutor is truly at risk "
                          "when the behaviour its rate counts is above the rule's threshold. truly_at_risk: tutor "
                          "reschedule probability on last_day > 15%",
            "tutors": [tutor.truth(self.last_day) for tutor in self.tutors],
        }


@dataclass
class _Pairing:
    student_id: str
    student_name: str
    sessions: int = 0


def simulate(seed: int = 1, tutors: int = 80, sessions_per_day: float = 35, days: int = 90,
             now: dt.datetime | None = None, mix: str = "default") -> Simulation:
    """Tutors, students and every finished session of the ``days`` days ending ``now``, in time order;
    ``mix`` chooses the shares of each kind of tutor (``MIXES``)."""
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {', '.join(MIXES)}, not {mix!r}")
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    last_day = now.astimezone(LOCAL_ZONE).date()
    first_day = last_day - dt.timedelta(days=days - 1)
    traits = random.Random(seed * 7919 + 1)
    simulation = Simulation(seed, first_day, last_day, now,
                            make_tutors(tutors, first_day, last_day, rng, fake, traits, MIXES[mix]), mix=mix)
    factory = SessionFactory(simulation.tutors, rng, fake, prefix=f"sim-{seed}-")
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        active = [t for t in simulation.tutors if t.start_date <= day]
        if not active:
            continue
        weights = [t.load for t in active]
        for _ in range(poisson(sessions_per_day * day_volume(day), rng)):
            tutor = rng.choices(active, weights)[0]
            local = dt.datetime.combine(day, dt.time(start_hour(day, rng), rng.choice((0, 0, 15, 30, 30, 45))),
                                        tzinfo=LOCAL_ZONE)
            session = factory.make(tutor, local.astimezone(dt.UTC))
            if _ended(session) <= now:
                simulation.sessions.append(session)
    simulation.sessions.sort(key=lambda s: (s["scheduled_time"], s["session_id"]))
    simulation.factory = factory
    return simulation


class SessionFactory:
    """Makes one session of a tutor at a moment, keeping each tutor's students (and so first sessions)."""

    def __init__(self, tutors: list[TutorProfile], rng: random.Random, fake: Faker, prefix: str):
        self.rng, self.prefix, self.count = rng, prefix, 0
        self.students = _Students(fake)
        self.pairings = {t.tutor_id: [self.students.new() for _ in range(rng.randint(1, 4) + int(3 * t.load))]
                         for t in tutors}

    def make(self, tutor: TutorProfile, start: dt.datetime) -> dict[str, Any]:
        self.count += 1
        return _session(f"{self.prefix}{self.count:07d}", tutor, start, self.pairings[tutor.tutor_id],
                        self.students, self.rng)


class _Students:
    def __init__(self, fake: Faker):
        self.fake, self.count = fake, 0

    def new(self) -> _Pairing:
        self.count += 1
        return _Pairing(f"student-{self.count:06d}", self.fake.name())


def _session(session_id: str, tutor: TutorProfile, start: dt.datetime, pairings: list[_Pairing],
             students: _Students, rng: random.Random) -> dict[str, Any]:
    if rng.random() < NEW_STUDENT_SHARE or not pairings:
        pairings.append(students.new())
        pairing = pairings[-1]
    else:
        pairing = rng.choice(pairings)
    day = start.astimezone(LOCAL_ZONE).date()
    duration = rng.choices(*DURATIONS)[0]
    record: dict[str, Any] = {
        "session_id": session_id, "tutor_id": tutor.tutor_id, "tutor_name": tutor.name,
        "student_id": pairing.student_id, "student_name": pairing.student_name,
        "subject": rng.choice(tutor.subjects), "scheduled_time": _iso(start), "duration_minutes": duration,
        "is_first_session": pairing.sessions == 0,
    }
    pairing.sessions += 1
    moved_p, no_show_p = tutor.odds_on(day, first=record["is_first_session"])
    draw = rng.random()
    if draw < moved_p:
        by_tutor = rng.random() < TUTOR_SHARE_OF_RESCHEDULES
        record["status"] = "rescheduled"
        record["reschedule_info"] = _reschedule(tutor, start, by_tutor, rng)
    elif draw < moved_p + no_show_p:
        record["status"] = "no_show"
    else:
        record["status"] = "completed"
        record["completed_time"] = _iso(start + dt.timedelta(minutes=duration))
    return record


def _reschedule(tutor: TutorProfile, start: dt.datetime, by_tutor: bool, rng: random.Random) -> dict[str, Any]:
    last_minute = rng.random() < (tutor.last_minute_share if by_tutor else 0.3)
    if last_minute:
        notice = dt.timedelta(hours=rng.uniform(0.5, 23.5))
    else:
        notice = dt.timedelta(hours=min(24 * 14, 24 + rng.lognormvariate(3.6, 0.8)))
    weights = tutor.reason_weights if by_tutor else (0.3, 0.4, 0.2, 0.05, 0.05)
    return {
        "initiator": "tutor" if by_tutor else "student",
        "reason": rng.choices(REASONS, weights)[0],
        "original_time": _iso(start),
        "new_time": _iso(start + dt.timedelta(days=rng.choices((1, 2, 3, 4, 5, 7), (3, 4, 3, 2, 1, 2))[0],
                                              minutes=rng.choice((-60, 0, 0, 0, 30, 60)))),
        "requested_at": _iso(start - notice),
    }


def _ended(session: dict[str, Any]) -> dt.datetime:
    start = dt.datetime.fromisoformat(session["scheduled_time"])
    return start + dt.timedelta(minutes=session["duration_minutes"])


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
