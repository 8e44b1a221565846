"""A small, hand-made set of tutors for the dashboard's views, on SQLite and PostgreSQL.

Alice moves 4 of 10 sessions (flagged), Bob 1 of 10, Carol has only old sessions, and a
tutor whose name is an HTML injection attempt moves 3 of 8 (flagged).
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.store import DashboardStore
from engine.ingest import ingest
from tests.conftest import NOW
from tests.factories import raw_session

DAY = dt.timedelta(days=1)
XSS_NAME = "<img src=x onerror=alert(1)>"
PLANS = {  # tutor id: (name, sessions, tutor reschedules, days back of the newest session)
    "t-alice": ("Alice Moreno", 10, 4, 1),
    "t-bob": ("Bob Stone", 10, 1, 1),
    "t-carol": ("Carol King", 10, 0, 60),
    "t-0042": (XSS_NAME, 8, 3, 2),
}


def plan_sessions(plans=PLANS) -> list[dict]:
    sessions = []
    for tutor_id, (name, count, moved, days_back) in plans.items():
        for i in range(count):
            status = "rescheduled" if i < moved else "completed"
            sessions.append(raw_session(f"{tutor_id}-{i}", tutor_id, NOW - (days_back + i * 0.5) * DAY, status,
                                        "tutor", tutor_name=name, reason="traffic <b>jam</b>"))
    return sessions


@pytest.fixture
def seeded(database, services):
    ingest(services, plan_sessions())
    return database


@pytest.fixture
def store(seeded, services) -> DashboardStore:
    return DashboardStore(services, overview_seconds=0)
