"""SIGTERM, as a deploy or a scale-down sends it: gunicorn, the consumer and the dashboard each finish the
work in flight and exit with status 0 without a traceback (the consumer and the dashboard log that they stopped)."""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import os
import signal
import socket
import time
import urllib.parse
import urllib.request

from engine.children import answers
from engine.models import InboxItem, Session
from engine.queue import create_huey
from tests.e2e.test_ingestion import assert_each_session_counted_once
from tests.factories import raw_session
from tests.support.processes import Service, free_port, tqs_argv, wait_until
from tests.support.stack import API_KEY


def sessions(count: int, tutors: int, prefix: str) -> list[dict]:
    now = dt.datetime.now(dt.UTC)
    return [raw_session(f"{prefix}-{i}", f"tutor-{i % tutors}", now - dt.timedelta(days=i % 80, hours=3),
                        *(("rescheduled", "tutor") if i % 7 == 0 else ("completed",))) for i in range(count)]


def exit_status(service: Service, timeout: float) -> int:
    return service.process.wait(timeout=timeout)


def assert_clean_exit(service: Service, status: int, stopped_line: str | None) -> None:
    log = service.log()
    assert status == 0, f"{service.name} exited with {status}: {log[-1500:]}"
    assert stopped_line is None or stopped_line in log, f"{service.name} logged no shutdown line: {log[-1500:]}"
    assert "Traceback" not in log, log[log.index("Traceback") - 200:][:3000]


def test_gunicorn_answers_the_request_in_flight_then_exits(postgres_database, postgres_url, private_redis,
                                                           make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0")
    body = json.dumps(sessions(1000, tutors=20, prefix="inflight")).encode()
    host, port = urllib.parse.urlparse(stack.client.base_url).netloc.split(":")
    request = (f"POST /api/sessions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=30) as client:
        client.sendall(request + body[:-1000])
        wait_until(lambda: accepted_by_server(client), 10, "a gunicorn worker to accept the request")
        os.kill(stack.api.process.pid, signal.SIGTERM)  # to the master, as a platform's stop does
        client.sendall(body[-1000:])
        response = read_response(client)
    assert response.startswith(b"HTTP/1.1 202"), response[:300]
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["accepted"] == 1000
    # No shutdown line asserted: `tqs api` runs gunicorn at --log-level warning, which says nothing on a clean stop.
    assert_clean_exit(stack.api, exit_status(stack.api, 15), "event=api_stopped")
    assert not stack.client.healthy()
    stack.wait_until_drained(1000)  # the worker, still running, stores what the API accepted
    assert_each_session_counted_once(postgres_database, 1000)


def accepted_by_server(client: socket.socket) -> bool:
    """Whether the server has accept()ed this connection (Linux: its end then has a socket inode)."""
    ours = (client.getpeername()[1], client.getsockname()[1])  # the server's end: (its port, our port)
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, remote, inode = line.split()[1], line.split()[2], line.split()[9]
            if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == ours:
                return inode != "0"  # still in the listen backlog, it has no socket file yet
    return False


def read_response(client: socket.socket) -> bytes:
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_the_consumer_finishes_its_tasks_and_leaves_the_rest_queued(postgres_database, postgres_url, private_redis,
                                                                    make_stack):
    queue_url = f"redis://127.0.0.1:{private_redis.port}/0"
    stack = make_stack(postgres_database, postgres_url, queue_url)
    records = sessions(4000, tutors=40, prefix="backlog")
    stack.worker.stop()  # the backlog is queued whole before a consumer takes any of it
    for start in range(0, len(records), 100):  # small tasks: the two in hand at SIGTERM leave most queued
        assert stack.client.request("POST", "/api/sessions", records[start:start + 100])[0] == 202
    stack.restart_worker()
    wait_until(lambda: stack.inbox_counts().get("processed", 0) > 0, 30, "the worker to be storing the backlog")
    stack.worker.stop()  # SIGTERM to the consumer and its worker processes
    assert_clean_exit(stack.worker, stack.worker.process.returncode, "event=worker_stopped")
    with postgres_database.connection_context():
        pending = {row.id for row in InboxItem.select(InboxItem.id).where(InboxItem.status == "pending")}
        stored = Session.select().count()
    assert pending, "the consumer finished the whole backlog before SIGTERM; the test proves nothing"
    assert stored == len(records) - len(pending)  # every task it started, it finished
    assert pending <= queued_inbox_ids(queue_url)  # and no task it took was dropped
    stack.restart_worker()
    stack.wait_until_drained(len(records))
    assert_each_session_counted_once(postgres_database, len(records))


def queued_inbox_ids(queue_url: str) -> set[int]:
    """The inbox rows that store tasks still waiting in the queue carry."""
    huey = create_huey(queue_url)
    ids: set[int] = set()
    for data in huey.storage.enqueued_items():
        message = huey.serializer.deserialize(data)
        if message.name.endswith("store_inbox"):
            ids.update(message.args[0])
    return ids


def test_the_dashboard_exits_promptly_with_a_browser_session_open(sqlite_database, tmp_path):
    _, url = sqlite_database
    port = free_port()
    env = {**os.environ, "TQS_DATABASE_URL": url, "TQS_QUEUE_URL": f"sqlite:///{tmp_path / 'q.db'}",
           "TQS_DATA_DIR": str(tmp_path), "TQS_DASHBOARD_PASSWORD": "pw-for-shutdown"}
    dashboard = Service("dashboard", tqs_argv("dashboard", "--port", str(port)), env, tmp_path).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/login"), 60, f"the dashboard to listen ({dashboard.log()[-1500:]})")
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"username": "admin", "password": "pw-for-shutdown"}).encode()
        with browser.open(base + "/login", data=form, timeout=30) as page:  # redirected to the page itself
            assert page.status == 200 and b"bokeh" in page.read().lower()
        started = time.monotonic()
        os.kill(dashboard.process.pid, signal.SIGTERM)
        status = exit_status(dashboard, 10)
        assert time.monotonic() - started < 5
        assert_clean_exit(dashboard, status, "event=dashboard_stopped")
    finally:
        dashboard.kill()


