"""Debian's Chromium driven by Playwright, for the dashboard's browser tests and benchmark.

Never ``playwright install``: it downloads a browser, which this network refuses. The flags
keep Chromium from reaching for Google's hosts at start.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TABLE_ROW = ".tabulator-row"
CHART = ".tq-detail canvas"
ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "test-artifacts"


# Records, in the page's own clock (ms since its navigation began, redirects included), the first
# animation frame in which each selector matches inside some shadow root (a selector does not
# span roots here, unlike Playwright's).
FIRST_SEEN_SCRIPT = """
(() => {
  const watched = %s;
  const seen = window.__tqFirstSeen = {};
  const present = (root, selector) => {
    if (root.querySelector(selector)) return true;
    for (const element of root.querySelectorAll("*")) {
      if (element.shadowRoot && present(element.shadowRoot, selector)) return true;
    }
    return false;
  };
  const tick = () => {
    for (const [name, selector] of Object.entries(watched)) {
      if (seen[name] === undefined && document.body && present(document, selector)) seen[name] = performance.now();
    }
    if (Object.keys(seen).length < Object.keys(watched).length) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


def record_first_seen(context, selectors: dict[str, str]) -> None:
    """Have every page of ``context`` note when each named selector first matched."""
    import json
    context.add_init_script(FIRST_SEEN_SCRIPT % json.dumps(selectors))


def first_seen_seconds(page, name: str, timeout: float = 60) -> float:
    page.wait_for_function("name => window.__tqFirstSeen && window.__tqFirstSeen[name] !== undefined",
                           arg=name, timeout=timeout * 1000)
    return page.evaluate("name => window.__tqFirstSeen[name]", name) / 1000


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


@dataclass
class RequestLog:
    """Every URL a page asked for, to prove nothing leaves this host."""

    urls: list[str] = field(default_factory=list)

    def watch(self, context) -> None:
        context.on("request", lambda request: self.urls.append(request.url))

    def foreign(self) -> list[str]:
        return [url for url in self.urls
                if urllib.parse.urlparse(url).scheme not in ("blob", "data")
                and urllib.parse.urlparse(url).hostname != "127.0.0.1"]


def log_in(page, base_url: str, user: str, password: str, path: str = "/") -> float:
    """Open ``path`` (the server sends us to the login form), sign in; returns when the form was submitted."""
    page.goto(base_url + path)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    submitted = time.perf_counter()
    page.press("input[name=password]", "Enter")
    return submitted
