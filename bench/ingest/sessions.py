"""The sessions each shape sends, generated like the Rails app's: a share rescheduled by the tutor."""

from __future__ import annotations

import datetime as dt
import random

from bench.ingest.figures import Shape


def _record(session_id: str, tutor_id: str, when: dt.datetime, rng: random.Random, propensity: float) -> dict:
    moved = rng.random() < propensity
    record = {"session_id": session_id, "tutor_id": tutor_id, "student_id": f"s{rng.randrange(5000)}",
              "scheduled_time": when.isoformat(), "status": "rescheduled" if moved else "completed"}
    if moved:
        record["reschedule_info"] = {"initiator": "tutor", "reason": "personal"}
    return record


def shape_sessions(shape: Shape, now: dt.datetime, seed: int = 1) -> list[dict]:
    """``shape.sessions`` sessions spread evenly over the last ``shape.days`` days, in time order or shuffled."""
    rng = random.Random(seed)
    propensity = [rng.choice([0.03, 0.05, 0.08, 0.25]) for _ in range(shape.tutors)]
    start = now - dt.timedelta(days=shape.days)
    records = []
    for i in range(shape.sessions):
        tutor = rng.randrange(shape.tutors)
        when = start + dt.timedelta(seconds=shape.days * 86400 * (i + 0.5) / shape.sessions)
        records.append(_record(f"{shape.name}-{i}", f"{shape.name}-tutor-{tutor:04d}", when, rng, propensity[tutor]))
    if shape.shuffled:
        rng.shuffle(records)
    return records


def live_sessions(count: int, existing_tutors: list[str], new_share: float, now: dt.datetime,
                  seed: int = 7) -> list[dict]:
    """Sessions of the last hour; ``new_share`` of them from tutors never seen before."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        tutor = f"live-new-{i}" if rng.random() < new_share or not existing_tutors else rng.choice(existing_tutors)
        when = now - dt.timedelta(seconds=rng.uniform(60, 3600))
        records.append(_record(f"live-{i}", tutor, when, rng, 0.1))
    return records
