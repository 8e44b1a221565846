"""gunicorn's hooks for ``tqs api`` (``--config python:api.gunicorn_hooks``): the master's own structured lines,
so a deploy's log shows the API ready and, after a SIGTERM has let the requests in flight finish, stopped."""

from __future__ import annotations

import logging

from engine.logs import configure_logging, log_event

logger = logging.getLogger("tutor_quality.api")


def when_ready(server) -> None:
    configure_logging()
    log_event(logger, "api_started", pid=server.pid, workers=server.num_workers, bind=",".join(server.cfg.bind))


def on_exit(server) -> None:
    log_event(logger, "api_stopped", pid=server.pid)
