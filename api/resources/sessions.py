"""POST /api/sessions: one session object or an array of up to 1,000, stored before 202."""

from __future__ import annotations

import falcon

from api.body import read_json
from api.errors import InvalidSessions
from engine import inbox
from engine.services import Services
from engine.tasks import Tasks


class SessionsResource:
    scopes = {"POST": "ingest"}
    rate_limited = ("POST",)

    def __init__(self, services: Services, tasks: Tasks, max_body_bytes: int):
        self._services, self._tasks, self._max_body_bytes = services, tasks, max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self._max_body_bytes)
        items = body if isinstance(body, list) else [body]
        try:
            records = inbox.validate_batch(items, indexed=isinstance(body, list))
        except inbox.RejectedBatch as rejected:
            raise InvalidSessions([error.as_dict() for error in rejected.errors]) from None
        ids = inbox.accept(self._services.database, records, self._services.clock())
        self._tasks.enqueue_inbox(ids)  # best effort: stored rows are swept up if this fails
        resp.status = falcon.HTTP_202
        resp.media = {"accepted": len(records), "session_ids": [record.session_id for record in records]}
