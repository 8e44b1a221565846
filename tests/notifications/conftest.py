"""Fixtures for email tests: a real SMTP server on loopback, and services whose settings send to it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from engine.services import Services
from tests.support.smtp import SmtpServer

RECIPIENTS = ("ops@example.com", "lead@example.com")
SENDER = "Tutor Quality <tq@example.com>"


@pytest.fixture
def smtp_server(tmp_path) -> Iterator[SmtpServer]:
    """STARTTLS and AUTH required, as a production relay would have them."""
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


def with_email(services: Services, **settings) -> Services:
    """The same services with email settings replaced (validated as at start-up)."""
    changed = dataclasses.replace(services.settings, **{"email_to": RECIPIENTS, "email_from": SENDER, **settings})
    return dataclasses.replace(services, settings=changed)
