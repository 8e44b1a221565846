"""``tqs email preview SESSION_ID`` and ``tqs email send-test ADDRESS``: see a report, test the transport."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

from engine.services import Services
from notifications.content import session_report, tutor_report
from notifications.endpoint import parse_address
from notifications.render import compose, render
from notifications.sample import sample_session, sample_tutor
from notifications.transports import DeliveryError, RecipientRefused, open_transport


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    email = command("email", _usage, "preview a report, or send a test message through TQS_EMAIL_URL")
    actions = email.add_subparsers(metavar="ACTION")
    preview_cmd = actions.add_parser("preview", help="print the report of a stored session without sending it",
                                     description="Print the report of a stored session, as scored now.")
    preview_cmd.add_argument("session_id")
    part = preview_cmd.add_mutually_exclusive_group()
    part.add_argument("--html", action="store_const", const="html", dest="part", help="the HTML part only")
    part.add_argument("--text", action="store_const", const="text", dest="part", help="the plain-text part only")
    preview_cmd.set_defaults(command=preview)
    test_cmd = actions.add_parser("send-test", help="send a sample report to ADDRESS through the configured transport",
                                  description="Send a sample report to ADDRESS through TQS_EMAIL_URL.")
    test_cmd.add_argument("address")
    test_cmd.set_defaults(command=send_test, connect=False)


def _usage(services: Services, args: argparse.Namespace) -> int:
    print("tqs email: name an action: preview SESSION_ID [--html|--text], or send-test ADDRESS", file=sys.stderr)
    return 2


def preview(services: Services, args: argparse.Namespace) -> int:
    content = session_report(services.settings, services.metric_names, args.session_id)
    if content is None:
        print(f"tqs email preview: no session {args.session_id!r}", file=sys.stderr)
        return 1
    rendered = render(content)
    if args.part == "html":
        print(rendered.html)
    elif args.part == "text":
        print(rendered.text)
    else:
        print(f"Subject: {rendered.subject}\n\n{rendered.text}")
    return 0


def send_test(services: Services, args: argparse.Namespace) -> int:
    settings = services.settings
    try:
        address = parse_address(args.address)
    except ValueError as exc:
        print(f"tqs email send-test: {exc}", file=sys.stderr)
        return 2
    content = tutor_report(settings, services.metric_names, sample_tutor(services.metric_names), sample_session())
    rendered = render(content)
    rendered = dataclasses.replace(rendered, subject=f"[TEST] {rendered.subject}")
    message = compose(rendered, settings.email_from, [address])
    endpoint = settings.email_endpoint
    try:
        with open_transport(endpoint) as sender:
            response = sender.send(message, address)
    except (DeliveryError, RecipientRefused) as exc:
        print(f"tqs email send-test: not sent: {exc}", file=sys.stderr)
        return 1
    print(f"sent a sample report to {address} through {endpoint.describe()} ({response})")
    return 0
