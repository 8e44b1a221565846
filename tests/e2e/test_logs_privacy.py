"""Logs carry ids, never personal data or secrets.

A few hundred sessions with distinctive student names and reschedule reasons go through the real services
(gunicorn, Huey consumers on Postgres and Redis, email reports rendered and written to files, the dashboard
serving a tutor's page), along with refused requests that carry the same data and a settings change. Then
every log file is read: no student name, reason, API key, secret key or password is in any of them, while
every session id and tutor id is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import http.client
import http.cookiejar
import json
import os
import secrets
import urllib.parse
import urllib.request
from email import policy
from pathlib import Path

from cryptography.fernet import Fernet

from tests.factories import raw_session
from tests.support.processes import ApiClient, Service, free_port, tqs_argv, wait_until

TUTORS, SESSIONS_EACH = 30, 10
STUDENT_SURNAME = "Quillfeather"  # every student's name holds it: one search finds any of them in a log
REASON_MARK = "Zanzibar"  # likewise every reason (one word: found however a log line quotes it)
DASHBOARD_PASSWORD = "dash-" + secrets.token_hex(12)
MAX_BODY_BYTES = 200_000


def replay_records(now: dt.datetime) -> list[dict]:
    """Tutor n moves n % 4 of their 10 sessions, each with its student's name and a reason."""
    records = []
    for t in range(TUTORS):
        for i in range(SESSIONS_EACH):
            moved = i < t % 4
            records.append(raw_session(
                f"lp-s{t:02d}-{i}", f"lp-t{t:02d}", now - dt.timedelta(days=1 + 2 * i, hours=t),
                "rescheduled" if moved else "completed", "tutor", tutor_name=f"Tutor {t:02d}",
                student_name=f"Ottilie {STUDENT_SURNAME}-{t:02d}{i}", subject="Chemistry",
                reason=f"flight from {REASON_MARK} delayed, case {t:02d}{i}"))
    return records


def post_bytes(base_url: str, key: str, body: bytes, chunked: bool) -> int:
    """One POST, with a Content-Length or chunked (Transfer-Encoding: chunked, no length) as streaming clients
    send; the status."""
    address = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    sent = (body[i:i + 8192] for i in range(0, len(body), 8192)) if chunked else body
    # over the limit, the server may answer (413) and close before reading it all: the answer is still there
    with contextlib.suppress(OSError):
        connection.request("POST", "/api/sessions", body=sent, encode_chunked=chunked,
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    status = connection.getresponse().status
    connection.close()
    return status


def open_dashboard_page(base_url: str, tutor_id: str) -> None:
    """Sign in with the form, then request a tutor's page: the server builds the page's views for it."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = urllib.parse.urlencode({"username": "admin", "password": DASHBOARD_PASSWORD}).encode()
    opener.open(base_url + "/login", data=form, timeout=30).read()
    opener.open(f"{base_url}/?{urllib.parse.urlencode({'tutor': tutor_id})}", timeout=30).read()


def test_logs_hold_ids_but_no_student_names_reasons_or_secrets(make_stack, private_redis, postgres_database,
                                                              postgres_url, tmp_path):
    ingest_key, admin_key = "ingest-" + secrets.token_hex(16), "admin-" + secrets.token_hex(16)
    secret_key = Fernet.generate_key().decode()
    emails = tmp_path / "emails"
    shared = {"TQS_DATABASE_URL": postgres_url, "TQS_QUEUE_URL": f"redis://127.0.0.1:{private_redis.port}/0",
              "TQS_DATA_DIR": str(tmp_path), "TQS_SECRET_KEY": secret_key, "TQS_DASHBOARD_PASSWORD": DASHBOARD_PASSWORD}
    dashboard_port = free_port()
    dashboard = Service("dashboard", tqs_argv("dashboard", "--port", str(dashboard_port)), {**os.environ, **shared},
                        tmp_path).start()  # first: it takes longest to start, and it starts while the rest runs
    try:
        stack = make_stack(postgres_database, postgres_url, shared["TQS_QUEUE_URL"], extra_env={
            **shared, "TQS_API_KEYS": ingest_key, "TQS_ADMIN_API_KEYS": admin_key, "TQS_EMAIL_POLICY": "state-change",
            "TQS_EMAIL_URL": f"file://{emails}", "TQS_EMAIL_TO": "ops@example.com",
            "TQS_MAX_BODY_BYTES": str(MAX_BODY_BYTES)})
        client, admin = ApiClient(stack.client.base_url, ingest_key), ApiClient(stack.client.base_url, admin_key)
        records = replay_records(dt.datetime.now(dt.UTC).replace(microsecond=0))
        for start in range(0, 250, 25):
            assert client.request("POST", "/api/sessions", records[start:start + 25])[0] == 202
        for record in records[250:290]:
            assert client.request("POST", "/api/sessions", record)[0] == 202
        base_url = stack.client.base_url
        assert post_bytes(base_url, ingest_key, json.dumps(records[290:]).encode(), chunked=True) == 202
        oversized = json.dumps(records * 3).encode()  # each record holds a student name and a reason
        assert len(oversized) > MAX_BODY_BYTES
        assert post_bytes(base_url, ingest_key, oversized, chunked=True) == 413
        assert post_bytes(base_url, ingest_key, oversized, chunked=False) == 413
        spoiled = [*records[:3], {**records[3], "scheduled_time": f"{records[3]['student_name']} on Tuesday"}]
        assert client.request("POST", "/api/sessions", spoiled)[0] == 400  # refused, naming the student
        assert client.request("POST", "/api/sessions", raw=b'{"student_name": "Ottilie Quillfeather-x", ')[0] == 400
        stack.wait_until_drained(len(records))
        change = {"settings": {"threshold": 14}, "reason": "tighter", "changed_by": "ops-lead"}
        assert admin.request("PUT", "/api/rules/reschedule_rate", change)[0] == 200
        for t in range(0, TUTORS, 3):
            assert client.request("GET", f"/api/tutors/lp-t{t:02d}")[0] == 200
            assert client.request("GET", f"/api/tutors/lp-t{t:02d}/history")[0] == 200

        dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        wait_until(lambda: "event=dashboard_started" in dashboard.log(), 60,
                   f"the dashboard to start (log: {dashboard.log()[-1500:]})")
        open_dashboard_page(dashboard_url, "lp-t03")
        wait_until(lambda: "event=dashboard_page_built tutor_selected=True" in dashboard.log(), 30,
                   f"the dashboard to build a tutor's page (log: {dashboard.log()[-1500:]})")
        wait_until(lambda: no_email_waiting(client), 30, "every email report to be written")
    finally:
        dashboard.kill()

    assert STUDENT_SURNAME in first_report_html(emails)  # the names really went through the reports
    logs = {path.name: path.read_text(errors="replace") for path in sorted(tmp_path.glob("*.log"))}
    assert {"api.log", "worker.log", "dashboard.log"} <= set(logs)
    for secret in (STUDENT_SURNAME, REASON_MARK, ingest_key, admin_key, secret_key, DASHBOARD_PASSWORD):
        leaked = [name for name, text in logs.items() if secret.lower() in text.lower()]
        assert not leaked, f"{secret!r} is in {leaked}"
    worker, api = logs["worker.log"], logs["api.log"]
    assert all(f"session_id={record['session_id']} " in worker for record in records)
    assert all(f"tutor_id=lp-t{t:02d} " in worker for t in range(TUTORS))
    assert "event=email_sent report_id=" in worker
    assert "method=POST path=/api/sessions status=202" in api and "key=env-1" in api  # the key by its name
    assert "method=PUT path=/api/rules/reschedule_rate status=200" in api and "key=env-admin-1" in api
    assert "Traceback" not in api and "unhandled_error" not in api


def no_email_waiting(client: ApiClient) -> bool:
    backlog = client.request("GET", "/api/health")[1]["backlog"]["emails"]
    assert backlog["failed"] == 0
    return backlog["unsent"] == 0


def first_report_html(folder: Path) -> str:
    written = sorted(folder.glob("*.eml"))
    assert written, f"no email report in {folder}"
    message = email.message_from_bytes(written[0].read_bytes(), policy=policy.default)
    return message.get_body(("html",)).get_content()
