"""Writes tests/data/sample.json: a small, hand-shaped set of tutors whose flags are easy to check.

Run ``python tests/data/make_sample.py`` to regenerate; the output is deterministic.
The sample is meant to be scored as of SAMPLE_AS_OF (tests pass ``--as-of``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

SAMPLE_AS_OF = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
REASONS = ["personal", "personal", "scheduling conflict", "illness", "emergency", "technical"]

# tutor id, name, number of sessions, days back of first session, tutor reschedules (days back), student ones
TUTORS = [
    ("tut-ada", "Ada Okafor", 45, 89, [50], [20]),
    ("tut-ben", "Ben Castillo", 36, 88, [85, 75, 65, 55, 45, 35, 25, 15, 5], []),
    ("tut-cara", "Cara Lindqvist", 40, 89, [9, 6, 4, 2, 1], []),
    ("tut-dev", "Dev Raman", 40, 89, [88, 84, 80, 76, 72, 68, 64, 60], [10]),
    ("tut-eli", "Eli Novak", 3, 6, [5, 3], []),
    ("tut-fay", "Fay Mensah", 20, 80, [], [70, 50, 30, 20, 10]),
    ("tut-gus", "Gus Taylor", 12, 89, [80, 70, 60], []),
]


def _session(sid: str, tutor: tuple, when: dt.datetime, rng: random.Random, status: str = "completed",
             initiator: str | None = None) -> dict:
    tutor_id, name = tutor[0], tutor[1]
    record = {
        "session_id": sid, "tutor_id": tutor_id, "tutor_name": name,
        "student_id": f"stu-{rng.randint(1, 40):03d}", "scheduled_time": when.isoformat().replace("+00:00", "Z"),
        "status": status, "subject": rng.choice(["Algebra", "Chemistry", "SAT Prep", "Spanish", "Biology"]),
        "duration_minutes": rng.choice([30, 45, 60, 60, 90]),
    }
    if status == "completed":
        record["completed_time"] = (when + dt.timedelta(minutes=record["duration_minutes"])).isoformat()
    if status == "rescheduled":
        notice = dt.timedelta(hours=rng.choice([2, 6, 20, 30, 48, 72]))
        record["reschedule_info"] = {
            "initiator": initiator, "reason": rng.choice(REASONS),
            "original_time": record["scheduled_time"],
            "new_time": (when + dt.timedelta(days=rng.randint(1, 5))).isoformat(),
            "requested_at": (when - notice).isoformat(),
        }
    return record


def build() -> list[dict]:
    rng = random.Random(20261125)
    sessions: list[dict] = []
    for tutor in TUTORS:
        tutor_id, _, count, first_back, tutor_moves, student_moves = tutor
        span = first_back - 1 if tutor_id != "tut-gus" else 55  # Gus stopped teaching 35 days ago
        backs = [first_back - round(i * span / max(count - 1, 1)) for i in range(count)]
        moved = {**{b: "tutor" for b in tutor_moves}, **{b: "student" for b in student_moves}}
        for i, back in enumerate(backs):
            when = SAMPLE_AS_OF - dt.timedelta(days=back) + dt.timedelta(hours=rng.choice([15, 16, 17, 18, 19]))
            initiator = moved.pop(min(moved, key=lambda b: abs(b - back)), None) if moved and any(
                abs(b - back) <= span / max(count - 1, 1) for b in moved) else None
            status = "rescheduled" if initiator else ("no_show" if rng.random() < 0.03 else "completed")
            sessions.append(_session(f"{tutor_id}-s{i:03d}", tutor, when, rng, status, initiator))
    # window edges: exactly 7 days before as-of is outside the 7-day window, one second later is inside
    hal = ("tut-hal", "Hal Brooks")
    edge = SAMPLE_AS_OF - dt.timedelta(days=7)
    sessions.append(_session("tut-hal-edge-out", hal, edge, rng, "rescheduled", "tutor"))
    sessions.append(_session("tut-hal-edge-in", hal, edge + dt.timedelta(seconds=1), rng))
    for i in range(5):
        sessions.append(_session(f"tut-hal-s{i}", hal, SAMPLE_AS_OF - dt.timedelta(days=2 + i, hours=3), rng))
    # a zoned time: 2026-11-24T23:30-05:00 is 2026-11-25T04:30Z, after as-of, so in no window yet
    late = _session("tut-hal-zoned", hal, SAMPLE_AS_OF, rng)
    late["scheduled_time"] = "2026-11-24T23:30:00-05:00"
    sessions.append(late)
    sessions.sort(key=lambda s: s["scheduled_time"])
    return sessions


if __name__ == "__main__":
    path = Path(__file__).with_name("sample.json")
    path.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {path}")
