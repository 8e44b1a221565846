"""GET /api/health (no key): is the API alive, can it reach the database and the queue, how big is the backlog
(sessions not yet stored, tutors not yet rescored, email reports not yet sent or failed), and each rule's
state (loaded, disabled or failed to load, and how many tutors it is failing on)."""

from __future__ import annotations

import falcon

from engine import queries
from engine.services import Services
from engine.tasks import Tasks


class HealthResource:
    auth_required = False

    def __init__(self, services: Services, tasks: Tasks):
        self._services, self._tasks = services, tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        database, queue = {"ok": True}, {"ok": True}
        rules = {s.name: {"status": s.status, "version": s.version or None, **({"error": s.error} if s.error else {})}
                 for s in self._services.rules.statuses}
        body: dict = {"status": "ok", "database": database, "queue": queue, "rules": rules}
        try:
            with self._services.database.connection_context():
                body["backlog"] = queries.backlog(self._services.clock()).as_dict()
                for name, failing in queries.rule_failures().items():
                    if rules.get(name, {}).get("status") in ("loaded", "failed"):  # others' rows go at a rescore
                        rules[name]["failing"] = failing
        except Exception as exc:  # report, do not fail: health must answer when the database is down
            database.update(ok=False, error=type(exc).__name__)
        try:
            queue["pending_tasks"] = self._tasks.huey.pending_count()
        except Exception as exc:
            queue.update(ok=False, error=type(exc).__name__)
        if not database["ok"]:
            body["status"] = "unavailable"
            resp.status = falcon.HTTP_503
        elif (not queue["ok"] or body["backlog"]["failed"] or body["backlog"]["emails"]["failed"]
              or any(rule["status"] == "failed" or "failing" in rule for rule in rules.values())):
            body["status"] = "degraded"
        resp.media = body
