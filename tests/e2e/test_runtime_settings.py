"""A settings change over HTTP reaches every process: gunicorn stores it, the Huey consumer rescores under it,
and sessions scored afterwards use it too, with no restart."""

import datetime as dt

from tests.factories import raw_session
from tests.support.processes import wait_until

ADMIN_KEY = "e2e-admin-key"


def sessions(tutor_id: str, total: int, moved: int, now: dt.datetime) -> list[dict]:
    return [raw_session(f"{tutor_id}-{i}", tutor_id, now - dt.timedelta(days=20 * (i + 1) / (total + 1)),
                        "rescheduled" if i < moved else "completed", "tutor" if i < moved else None)
            for i in range(total)]


def flagged(stack, tutor_id: str) -> bool:
    status, tutor = stack.client.request("GET", f"/api/tutors/{tutor_id}")
    return status == 200 and tutor["flagged"]


def test_a_threshold_changed_over_http_is_applied_by_the_worker_and_to_later_sessions(
        postgres_database, postgres_url, private_redis, make_stack):
    stack = make_stack(postgres_database, postgres_url, f"redis://127.0.0.1:{private_redis.port}/0",
                       extra_env={"TQS_ADMIN_API_KEYS": ADMIN_KEY})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = sessions("t-thirteen", 20, 3, now)  # 15%: not above the 15% threshold
    assert stack.client.request("POST", "/api/sessions", first)[0] == 202
    stack.wait_until_drained(len(first))
    assert not flagged(stack, "t-thirteen")

    status, body = stack.client.request(
        "PUT", "/api/rules/reschedule_rate", {"settings": {"threshold": 12, "clear_threshold": 10},
                                              "reason": "e2e: lower the bar", "changed_by": "ops"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert status == 200, body
    assert body["rescore"]["status"] == "queued"
    wait_until(lambda: flagged(stack, "t-thirteen"), 60, "the worker to rescore under the new threshold")
    wait_until(lambda: stack.client.request("GET", "/api/rules/reschedule_rate/history")[1]["changes"][0][
        "rescore"]["finished_at"], 60, "the rescore to finish")
    _, history = stack.client.request("GET", "/api/tutors/t-thirteen/history")
    raised = [e for e in history["events"] if e["type"] == "risk" and e["kind"] == "raised"]
    assert raised and raised[-1]["explanation"]["settings_change"]["changed_by"] == "ops (env-admin-1)"

    later = sessions("t-later", 15, 2, now)  # 13.3%: flagged at 12%, not at 15%
    assert stack.client.request("POST", "/api/sessions", later)[0] == 202
    stack.wait_until_drained(len(first) + len(later))
    assert flagged(stack, "t-later")
    assert "event=settings_change_rescored" in stack.worker.log()
