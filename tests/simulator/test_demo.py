"""``tqs demo`` as a newcomer runs it: starts, serves the API with data, stops cleanly on Ctrl-C, reuses data."""

import email
import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from email import policy

from tests.support.processes import free_port, tqs_argv, wait_until


def start_demo(data_dir, port, dashboard_port, *extra):
    env = {**os.environ, "TQS_DATA_DIR": str(data_dir)}
    for name in ("TQS_DATABASE_URL", "TQS_QUEUE_URL", "TQS_API_KEYS", "TQS_DASHBOARD_PASSWORD"):
        env.pop(name, None)
    argv = tqs_argv("demo", "--port", str(port), "--dashboard-port", str(dashboard_port), "--tutors", "15",
                    "--sessions-per-day", "8", "--live", "120", *extra)
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def read_until(process, marker: str, seen: list[str]) -> None:
    def found():
        line = process.stdout.readline()
        seen.append(line)
        return marker in line or process.poll() is not None
    wait_until(found, 120, f"{marker!r} from tqs demo", interval=0)
    assert marker in seen[-1], "".join(seen)


def get(port, path, key):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def stop(process, seen: list[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    rest = process.stdout.read()  # the same buffered reader as readline, so nothing is skipped
    return process.wait(timeout=60), "".join(seen) + rest


def assert_children_gone(data_dir):
    for pid in (data_dir / "demo" / "demo.pids").read_text().split():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"child {pid} still running after the demo stopped")


def dashboard_login(port, password) -> str:
    """Sign in to the dashboard with a form post; returns the page the login redirects to."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    form = urllib.parse.urlencode({"username": "admin", "password": password}).encode()
    with opener.open(f"http://127.0.0.1:{port}/login", data=form, timeout=10) as response:
        return response.read().decode()


def test_demo_serves_data_stops_on_sigint_and_reuses_its_data(tmp_path):
    port, dashboard_port = free_port(), free_port()
    demo = start_demo(tmp_path, port, dashboard_port)
    seen: list[str] = []
    try:
        read_until(demo, "demo ready", seen)
        key = (tmp_path / "demo" / "api_key").read_text().strip()
        password = (tmp_path / "demo" / "dashboard_password").read_text().strip()
        assert get(port, "/api/health", key)[1]["status"] in ("ok", "degraded")
        status, body = get(port, "/api/tutors", key)
        assert status == 200 and body["total"] == 15
        assert "bokeh" in dashboard_login(dashboard_port, password).lower()  # signed in: the app page itself
        reports = wait_until(lambda: sorted((tmp_path / "demo" / "emails").glob("*.eml")), 120,
                             "the worker's first email report")
        report = email.message_from_bytes(reports[0].read_bytes(), policy=policy.default)
        assert f"http://127.0.0.1:{dashboard_port}/?tutor=" in report.get_body(("plain",)).get_content()
    finally:
        code, output = stop(demo, seen)
    assert code == 0, output
    assert (f"emails     {tmp_path / 'demo' / 'emails'} (one .eml file per report); "
            "TQS_EMAIL_POLICY=every-session") in output
    assert f"API key    {key}" in output and "demo stopped" in output
    assert f"Dashboard  http://127.0.0.1:{dashboard_port}/   (login: admin / {password})" in output
    assert_children_gone(tmp_path)

    again = start_demo(tmp_path, port, dashboard_port)
    seen = []
    try:
        read_until(again, "demo ready", seen)
        assert any("reusing the demo data" in line for line in seen), "".join(seen)
    finally:
        code, output = stop(again, seen)
    assert code == 0
    assert_children_gone(tmp_path)
