"""Serve the dashboard with Panel: login required, every asset from our own server.

Panel's basic auth guards every page and websocket; the login and logout pages are our
own templates (Panel's load a logo from a CDN). Bokeh, Panel, Tabulator, our stylesheet
and script are all served locally, so the dashboard works behind strict proxies and
offline.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading

import panel as pn

from dashboard.app import create_page
from dashboard.store import DashboardStore
from dashboard.theme import ASSETS_DIR, ASSETS_ROUTE, PAGE_CSS, SCRIPT, TEMPLATES_DIR
from engine.config import ConfigError, Settings
from engine.logs import configure_logging, log_event
from engine.services import Services

logger = logging.getLogger("tutor_quality.dashboard")
QUIET_LOGGERS = ("bokeh", "tornado.access", "tornado.application", "panel")


def configure_panel() -> None:
    """Load only the extensions the page uses, and nothing from outside this server."""
    pn.extension("tabulator", global_css=[PAGE_CSS], js_files={"tq_dashboard": SCRIPT}, notifications=False,
                 design="native", loading_indicator=False)


def cookie_secret(settings: Settings) -> tuple[str, bool]:
    """The configured secret, or a new one per run (which signs every admin out on restart)."""
    if settings.dashboard_cookie_secret:
        return settings.dashboard_cookie_secret, False
    return secrets.token_hex(32), True


def serve_dashboard(services: Services, port: int, address: str, ready=None) -> None:
    """Run until interrupted; ``ready(server)`` is called once it listens (tests, the demo)."""
    settings = services.settings
    if not settings.dashboard_password:
        raise ConfigError("TQS_DASHBOARD_PASSWORD must be set: the dashboard shows people's performance data "
                          "and never runs open")
    configure_logging(settings.log_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    configure_panel()
    secret, generated = cookie_secret(settings)
    store = DashboardStore(services)
    origins = list(settings.dashboard_origins) or [f"{host}:{port}" for host in {address, "127.0.0.1", "localhost"}]

    def page() -> pn.viewable.Viewable:  # Panel calls this once per browser session
        return create_page(store, settings.dashboard_refresh_seconds)

    server = pn.serve(
        {"/": page},
        port=port, address=address, show=False, start=False, title="Tutor Quality",
        basic_auth={settings.dashboard_user: settings.dashboard_password}, cookie_secret=secret,
        basic_login_template=str(TEMPLATES_DIR / "login.html"), logout_template=str(TEMPLATES_DIR / "logout.html"),
        static_dirs={ASSETS_ROUTE: str(ASSETS_DIR)}, websocket_origin=origins, verbose=False,
        compress_response=True, websocket_compression_level=6,  # 3.6 MB of scripts, 40 kB documents: gzip both
    )
    log_event(logger, "dashboard_started", address=address, port=server.port,
              cookie_secret="generated" if generated else "configured",
              refresh_seconds=settings.dashboard_refresh_seconds)
    if ready is not None:
        server.io_loop.add_callback(ready, server)
    server.start()
    stop_on_sigterm(server)
    server.io_loop.start()
    server.stop()
    log_event(logger, "dashboard_stopped", port=port)


def stop_on_sigterm(server) -> None:
    """On SIGTERM (a deploy, a scale-down), let the loop finish the callback it is running, then return from
    :func:`serve_dashboard`, so the process exits with status 0 instead of dying by the signal."""
    def stop() -> None:
        log_event(logger, "dashboard_stopping", signal="SIGTERM")
        server.io_loop.stop()

    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        server.io_loop.asyncio_loop.add_signal_handler(signal.SIGTERM, stop)
