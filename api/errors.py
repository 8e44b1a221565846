"""Every error a client can cause, as one JSON shape: ``{"error": {"status", "title", "message", "errors"?}}``.

Resources raise these (or Falcon's own HTTPError subclasses); one serializer shapes the body.
A database that cannot be reached becomes 503 with Retry-After; anything else unexpected
is logged and answered 500 without internals.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
import peewee

from engine.logs import log_event

logger = logging.getLogger("tutor_quality.api")
RETRY_AFTER_SECONDS = 5
# Falcon's own errors for an unknown path or method carry no description; every error body says what is wrong.
DEFAULT_MESSAGES = {
    404: "Nothing is served at this path; GET /api/openapi.json lists every route.",
    405: "This path does not take that method; the Allow header lists those it does.",
}


class InvalidSessions(falcon.HTTPBadRequest):
    """Validation failed; ``errors`` lists every bad field (with its index in an array)."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(title="Invalid session data", description=f"{len(errors)} problem(s) in the request body")
        self.errors = errors


def serialize_error(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
    message = exception.description or DEFAULT_MESSAGES.get(exception.status_code, exception.title)
    body: dict[str, Any] = {"status": exception.status_code, "title": exception.title, "message": _encodable(message)}
    if isinstance(exception, InvalidSessions):
        body["errors"] = exception.errors
    resp.content_type = falcon.MEDIA_JSON
    resp.media = {"error": body}


def _encodable(text: str) -> str:
    """A message may quote the client's input, lone surrogates included, which UTF-8 cannot encode: escape them."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def database_unavailable(req: falcon.Request, resp: falcon.Response, exception: Exception, params: dict) -> None:
    log_event(logger, "database_unavailable", logging.ERROR, path=req.path, error=type(exception).__name__)
    raise falcon.HTTPServiceUnavailable(
        title="Database unavailable", description="Nothing was stored; retry later.", retry_after=RETRY_AFTER_SECONDS
    )


def unexpected_error(req: falcon.Request, resp: falcon.Response, exception: Exception, params: dict) -> None:
    if isinstance(exception, falcon.HTTPError):
        raise exception
    log_event(logger, "unhandled_error", logging.ERROR, exc_info=True, path=req.path, error=type(exception).__name__)
    raise falcon.HTTPInternalServerError(title="Internal error", description="The error has been logged.")


def install(app: falcon.App) -> None:
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, unexpected_error)
    app.add_error_handler(peewee.OperationalError, database_unavailable)
    app.add_error_handler(peewee.InterfaceError, database_unavailable)
