"""Cross-cutting request handling: API keys, database connections, one log line per request."""

from __future__ import annotations

import logging
import time

import falcon
import peewee

from engine.apikeys import KeyRing
from engine.logs import log_event
from engine.ratelimit import RateLimiter

logger = logging.getLogger("tutor_quality.api")


class RequireApiKey:
    """``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, from the bootstrap keys or ``tqs keys create``.

    Resources with ``auth_required = False`` (health, the OpenAPI document) are open. A method needs
    the scope its resource names in ``scopes`` (``{"POST": "ingest"}``); otherwise reading needs ``read``
    and anything else ``admin``. A key without it gets 403. ``req.context.api_key`` is the key's name,
    which logs and the audit trail show; the key itself is never logged.
    """

    def __init__(self, keyring: KeyRing):
        self._keyring = keyring

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or not getattr(resource, "auth_required", True):
            return
        holder = self._keyring.holder(_presented_key(req))
        if holder is None:
            raise falcon.HTTPUnauthorized(
                title="API key required",
                description="Send a valid key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                challenges=["Bearer"],
            )
        req.context.api_key = holder.name
        scope = required_scope(resource, req.method)
        if not holder.may(scope) and hasattr(resource, f"on_{req.method.lower()}"):  # else Falcon's 405
            raise falcon.HTTPForbidden(
                title=f"{scope.capitalize()} scope required",
                description=f"The key {holder.name!r} may {' and '.join(sorted(holder.grants))}; "
                            f"this needs a key with the {scope} scope (tqs keys create NAME --scope {scope}).",
            )


def required_scope(resource, method: str) -> str:
    declared = getattr(resource, "scopes", {}).get(method)
    return declared or ("read" if method in ("GET", "HEAD") else "admin")


class LimitIngestRate:
    """Per API key, on the resources marked ``rate_limited``: over the limit, 429 with Retry-After."""

    def __init__(self, limiter: RateLimiter | None):
        self._limiter = limiter

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if self._limiter is None or req.method not in getattr(resource, "rate_limited", ()):
            return
        verdict = self._limiter.check(req.context.api_key)
        if not verdict.allowed:
            log_event(logger, "rate_limited", logging.WARNING, key=req.context.api_key, retry_after=verdict.retry_after)
            raise falcon.HTTPTooManyRequests(
                title="Too many requests",
                description=f"This key's limit is {self._limiter.limit} requests per window: retry after "
                            f"{verdict.retry_after} s. Nothing was stored.",
                retry_after=verdict.retry_after,
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
        log_event(logger, "http_request", method=req.method, path=req.path, status=resp.status_code, ms=elapsed,
                  key=getattr(req.context, "api_key", None))
