"""Reading a JSON request body safely: content type, size limit, strict JSON."""

from __future__ import annotations

import json
from typing import Any

import falcon


def read_json(req: falcon.Request, max_bytes: int) -> Any:
    """The parsed body, or the 4xx that says what is wrong with it."""
    if req.content_type is None or req.content_type.split(";")[0].strip().lower() != "application/json":
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported content type", description="Send the body as application/json."
        )
    if req.content_length is not None and req.content_length > max_bytes:
        raise _too_large(max_bytes)
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    if not raw.strip():
        raise falcon.HTTPBadRequest(title="Malformed JSON", description="The request body is empty.")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise falcon.HTTPBadRequest(title="Malformed JSON", description=_describe(exc)) from None


def _too_large(max_bytes: int) -> falcon.HTTPError:
    return falcon.HTTPContentTooLarge(
        title="Request body too large", description=f"The limit is {max_bytes} bytes; send smaller batches."
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _describe(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "The JSON is nested too deeply."
    if isinstance(exc, UnicodeDecodeError):
        return "The body is not valid UTF-8."
    return f"The body is not valid JSON: {exc}"
