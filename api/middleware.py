"""Cross-cutting request handling: API keys, database connections, one log line per request."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import falcon
import peewee

from engine.logs import log_event

logger = logging.getLogger("tutor_quality.api")


class RequireApiKey:
    """``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, compared in constant time.

    Resources with ``auth_required = False`` (health, the OpenAPI document) are open. A method a
    resource lists in ``admin_methods`` (changing rule settings) needs one of the admin keys; any
    other key gets 403. ``req.context.api_key`` names the key for the audit trail, never showing it.
    """

    def __init__(self, keys: tuple[str, ...], admin_keys: tuple[str, ...] = ()):
        self._keys = [(key.encode(), False) for key in keys] + [(key.encode(), True) for key in admin_keys]

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or not getattr(resource, "auth_required", True):
            return
        presented = _presented_key(req)
        # compare against every key so timing does not reveal which one (or how many) matched
        matched = [admin for key, admin in self._keys if hmac.compare_digest(presented, key)] if presented else []
        if not matched:
            raise falcon.HTTPUnauthorized(
                title="API key required",
                description="Send a valid key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                challenges=["Bearer"],
            )
        req.context.api_key = key_name(presented)
        if req.method in getattr(resource, "admin_methods", ()) and not any(matched):
            raise falcon.HTTPForbidden(
                title="Admin key required",
                description="This key may send and read sessions but not change settings: use a key from "
                            "TQS_ADMIN_API_KEYS.",
            )


def key_name(key: bytes) -> str:
    """How logs and the audit trail name a key: a short fingerprint, from which the key cannot be recovered."""
    return "key:" + hashlib.sha256(key).hexdigest()[:12]


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
        log_event(logger, "http_request", method=req.method, path=req.path, status=resp.status_code, ms=elapsed,
                  key=getattr(req.context, "api_key", None))
