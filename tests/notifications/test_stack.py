"""Email from the real stack: gunicorn and a Huey consumer (subprocesses) on Postgres and Redis, reports
delivered to a real SMTP server with STARTTLS and AUTH that is refusing mail when the sessions arrive."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from engine.models import EmailReport, Tutor
from tests.factories import raw_session
from tests.notifications.conftest import RECIPIENTS
from tests.support.processes import wait_until


def _statuses(database) -> Counter:
    with database.connection_context():
        return Counter(status for (status,) in EmailReport.select(EmailReport.status).tuples())


def test_reports_go_out_once_each_after_the_smtp_server_recovers_and_scoring_never_waits(
        make_stack, private_redis, postgres_database, postgres_url, smtp_server):
    smtp_server.handler.mode = "refuse"
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0", extra_env={
        "TQS_EMAIL_POLICY": "every-session", "TQS_EMAIL_URL": smtp_server.url(),
        "TQS_EMAIL_TO": ",".join(RECIPIENTS), "TQS_EMAIL_FROM": "Tutor Quality <tq@example.com>",
        "TQS_EMAIL_RETRY_SECONDS": "2", "TQS_DASHBOARD_URL": "https://quality.example.com/"})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    records = [raw_session(f"s-{t}-{i}", f"t-{t}", now - dt.timedelta(days=10 - i),
                           "rescheduled" if i % 3 == 0 else "completed", tutor_name=f"Tutor {t}")
               for t in range(4) for i in range(5)]
    assert stack.client.request("POST", "/api/sessions", records[:12])[0] == 202
    for record in records[12:]:  # live single posts
        assert stack.client.request("POST", "/api/sessions", record)[0] == 202
    stack.wait_until_drained(len(records))
    with postgres_database.connection_context():  # every tutor is scored while no report can go out
        assert Tutor.select().where(Tutor.scored_at.is_null(False)).count() == 4

    wait_until(lambda: "email_attempt_failed" in stack.worker.log(), 30, "a refused delivery attempt")
    smtp_server.handler.mode = "accept"
    wait_until(lambda: _statuses(postgres_database) == {"sent": len(records)}, 60,
               f"every report sent (now {_statuses(postgres_database)}; log: {stack.worker.log()[-1500:]})")

    pairs = Counter((r.message["Message-ID"], r.recipients[0]) for r in smtp_server.received)
    assert len(pairs) == len(records) * len(RECIPIENTS) and set(pairs.values()) == {1}  # none twice, none lost
    assert all(r.encrypted and r.authenticated for r in smtp_server.received)
    subjects = {str(r.message["Subject"]) for r in smtp_server.received}
    assert any(s.startswith("[FLAGGED] Tutor 0 (t-0)") for s in subjects)
    assert any("https://quality.example.com/?tutor=t-3" in r.message.get_body(("html",)).get_content()
               for r in smtp_server.received)
    health = stack.client.request("GET", "/api/health")[1]
    assert health["backlog"]["emails"] == {"unsent": 0, "oldest_unsent_seconds": None, "failed": 0}
