"""Where the dashboard's look comes from: one stylesheet, served by our own server.

Panel renders each component in its own shadow root, so the views pass ``STYLESHEETS`` to
every pane they style. The URL is relative (it works behind a path prefix) and carries the
file's hash, so a new version is never hidden by a browser's cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets"
TEMPLATES_DIR = Path(__file__).parent / "templates"
ASSETS_ROUTE = "assets"

# The page itself (outside every shadow root): background and the system font, nothing fetched.
PAGE_CSS = """
body { margin: 0; background: #f3f5f8; color: #1b2430;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
"""

CHART_COLOURS = {"line_7d": "#3f72af", "line_30d": "#1f3a5f", "line_90d": "#7a8699", "threshold": "#b42318",
                "flagged_span": "#fda29b"}


def _versioned(name: str) -> str:
    return f"{ASSETS_ROUTE}/{name}?v={hashlib.sha256((ASSETS_DIR / name).read_bytes()).hexdigest()[:12]}"


STYLESHEETS = [_versioned("dashboard.css")]
SCRIPT = _versioned("dashboard.js")
