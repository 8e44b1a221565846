"""Cross-cutting request handling: API keys, database connections, one log line per request."""

from __future__ import annotations

import hmac
import logging
import time

import falcon
import peewee

from engine.logs import log_event

logger = logging.getLogger("tutor_quality.api")


class RequireApiKey:
    """``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, compared in constant time.

    Resources with ``auth_required = False`` (health, the OpenAPI document) are open.
    """

    def __init__(self, keys: tuple[str, ...]):
        self._keys = [key.encode() for key in keys]

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or not getattr(resource, "auth_required", True):
            return
        presented = _presented_key(req)
        # compare against every key so timing does not reveal which one (or how many) matched
        matched = [hmac.compare_digest(presented, key) for key in self._keys] if presented else []
        if not any(matched):
            raise falcon.HTTPUnauthorized(
                title="API key required",
                description="Send a valid key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                challenges=["Bearer"],
            )


def _presented_key(req: falcon.Request) -> bytes:
    header = req.get_header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip().encode()
    return (req.get_header("X-API-Key") or "").strip().encode()


class CloseDatabase:
    """Peewee connects on first use; this hands the connection back at the end of every request."""

    def __init__(self, database: peewee.Database):
        self._database = database

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        if not self._database.is_closed():
            self._database.close()


class LogRequests:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        elapsed = 1000 * (time.perf_counter() - getattr(req.context, "started", time.perf_counter()))
        log_event(logger, "http_request", method=req.method, path=req.path, status=resp.status_code, ms=elapsed)
