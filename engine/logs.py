"""One structured line per event: ``event=session_scored session_id=s1 tutor_id=t1 ms=3.2``.

Ids and numbers only, never personal data (names, reasons). Services call
:func:`configure_logging` once at start-up and log through :func:`log_event`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's lines to stderr in the key=value format (idempotent)."""
    root = logging.getLogger()
    if not any(getattr(handler, "_tqs", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._tqs = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("huey").setLevel(max(logging.WARNING, root.level))  # our own lines say it, structured


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, exc_info: bool = False,
              **fields: Any) -> None:
    """One line; ``exc_info`` adds the traceback below it, for errors nobody expected."""
    logger.log(level, "event=%s %s", event, " ".join(f"{key}={_value(value)}" for key, value in fields.items()),
               exc_info=exc_info)


SAFE = re.compile(r"[!#-<>-\[\]-~]+")  # printable ASCII but space, '"', '=' and backslash: written as it is


def _value(value: Any) -> str:
    """A value as one token: anything else is quoted and escaped as JSON, so a path holding a line break
    (``/api/tutors/x%0Aevent=...``) can never start a forged line."""
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    return text if SAFE.fullmatch(text) else json.dumps(text)
