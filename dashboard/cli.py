"""``tqs dashboard``: serve the admin dashboard. Panel is imported only when the command runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from engine.config import ConfigError
from engine.migrations import migrate
from engine.services import Services

DEFAULT_PORT = 5006


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    dash = command("dashboard", dashboard, "serve the admin dashboard (login required)", connect=False)
    dash.add_argument("--port", type=int, default=DEFAULT_PORT)
    dash.add_argument("--address", default="127.0.0.1", help="interface to listen on (default: this machine only)")


def dashboard(services: Services, args: argparse.Namespace) -> int:
    if not services.settings.dashboard_password:
        print("tqs dashboard: set TQS_DASHBOARD_PASSWORD; the dashboard shows people's performance data and "
              "never runs open", file=sys.stderr)
        return 2
    with services.database.connection_context():
        migrate(services.database)
    from dashboard.server import serve_dashboard  # Panel and hvPlot take a second or two to import

    try:
        serve_dashboard(services, args.port, args.address)
    except ConfigError as exc:
        print(f"tqs dashboard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
