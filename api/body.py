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
    raw = _body_stream(req).read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    if not raw.strip():
        raise falcon.HTTPBadRequest(title="Malformed JSON", description="The request body is empty.")
    try:
        return json.loads(_utf8(raw), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise falcon.HTTPBadRequest(title="Malformed JSON", description=_describe(exc)) from None


def _body_stream(req: falcon.Request):
    """Falcon's bounded stream reads nothing without a Content-Length, which would take a chunked body for an
    empty one; gunicorn de-chunks and ends such a body (``wsgi.input_terminated``), so it is read from the raw
    stream, still never past the limit."""
    if req.content_length is None and req.env.get("wsgi.input_terminated"):
        return req.stream
    return req.bounded_stream


def _utf8(raw: bytes) -> str:
    """UTF-8 only (RFC 8259; a leading byte order mark is ignored), where ``json.loads`` would also guess UTF-16
    and UTF-32. Encoded lone surrogates pass through here, so validation names the field that holds one."""
    if b"\x00" in raw:  # JSON escapes NUL inside strings, so a raw one means UTF-16 or UTF-32
        raise falcon.HTTPBadRequest(title="Malformed JSON",
                                    description="The body is not valid UTF-8: it holds NUL bytes (UTF-16 or UTF-32?).")
    return raw.decode("utf-8-sig", errors="surrogatepass")


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
