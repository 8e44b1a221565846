"""The benchmarks' HTTP client: one request per connection (gunicorn's sync workers close it after each
response anyway), retrying 429 and 503 after their ``Retry-After`` as the Rails client does."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from bench.stack import AUTH_HEADERS

RETRIED = (429, 503)


def request(port: int, method: str, path: str, body: Any = None, timeout: float = 120) -> tuple[int, bytes]:
    """One request; the status and body, or (0, the error's name) when it failed on the wire."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = dict(AUTH_HEADERS)
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status in RETRIED:
            time.sleep(min(float(response.getheader("Retry-After") or 1), 30))
        return response.status, payload
    except (OSError, http.client.HTTPException) as exc:
        return 0, type(exc).__name__.encode()
    finally:
        connection.close()


def post_sessions(port: int, body: bytes, attempts: int = 8) -> tuple[int, int]:
    """POST a batch until it is accepted or refused for good; (final status, attempts made)."""
    status = 0
    for attempt in range(1, attempts + 1):
        status, _ = request(port, "POST", "/api/sessions", body)
        if status not in (*RETRIED, 0):
            return status, attempt
        if status == 0:
            time.sleep(0.5 * attempt)
    return status, attempts
