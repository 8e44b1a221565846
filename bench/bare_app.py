"""The ceiling app for ``bench.ingest``: Falcon reading a POSTed body and answering 202, nothing else.

Served by gunicorn with the same settings as ``tqs api`` (``gunicorn bench.bare_app:app``), so
the difference to the real API is what our code does per request: parse, validate, store, enqueue.
"""

from __future__ import annotations

import falcon


class AcceptResource:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.bounded_stream.read()  # read the whole body, as the real API does
        resp.status = falcon.HTTP_202
        resp.media = {"accepted": len(body)}


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


app = falcon.App()
app.add_route("/api/sessions", AcceptResource())
app.add_route("/api/health", HealthResource())
