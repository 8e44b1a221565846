"""A real SMTP server on this machine (aiosmtpd), with STARTTLS and AUTH, that records what it receives.

Its certificate comes from a throwaway CA (trustme) that the client is told to trust through
``?cafile=``; ``mode`` makes it misbehave: ``refuse`` answers 451 to every message, ``drop``
closes the connection when the message is sent, ``sink`` only counts what it accepts (for benchmarks),
and ``rejected_recipients`` are refused for good.
"""

from __future__ import annotations

import contextlib
import email
import logging
import socket
import ssl
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.processes import free_port

USER, PASSWORD = "reports", "s3cret-pass"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    encrypted: bool
    authenticated: bool
    peer: tuple


@dataclass
class RecordingHandler:
    mode: str = "accept"
    rejected_recipients: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    auth_attempts: int = 0
    accepted: int = 0
    transports: list = field(default_factory=list)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.transports.append(server.transport)
        session.host_name = hostname
        return responses

    def disconnect_all(self) -> None:
        """Close every client connection from the server side (an idle timeout, a restart)."""
        for transport in self.transports:
            connection = transport.get_extra_info("socket")  # None once the transport has closed
            with contextlib.suppress(OSError):  # the TCP socket itself: aborting the TLS layer alone leaves it open
                if connection is not None:
                    connection.shutdown(socket.SHUT_RDWR)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook)
        if address in self.rejected_recipients:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.mode == "refuse":
            return "451 4.3.0 try again later"
        if self.mode == "drop":
            server.transport.close()
            return "421 4.3.0 closing"
        self.accepted += 1
        if self.mode == "sink":
            return "250 2.0.0 queued"
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        encrypted = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, encrypted,
                                      bool(session.authenticated), session.peer))
        return "250 2.0.0 queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.auth_attempts += 1
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(), PASSWORD.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class SmtpServer:
    """``start()`` listens on ``host``; ``url()`` is the matching ``TQS_EMAIL_URL``."""

    def __init__(self, tmp_path: Path, *, host: str = "127.0.0.1", starttls: bool = True, implicit_tls: bool = False,
                 auth: bool = True, mode: str = "accept"):
        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns of its own deprecation on every AUTH
        self.host, self.port = host, free_port()
        self.handler = RecordingHandler(mode)
        self.ca = trustme.CA()
        names = ["localhost", "127.0.0.1", host, non_loopback_address() or "127.0.0.1"]
        self.certificate = self.ca.issue_cert(*dict.fromkeys(names))
        self.cafile = tmp_path / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.cafile))
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.certificate.configure_cert(server_context)
        # Implicit TLS is encrypted from the start, but aiosmtpd only counts STARTTLS (its issue 281).
        options: dict = {"auth_require_tls": starttls and not implicit_tls, "authenticator": self.handler.authenticate}
        if not auth:
            options["auth_exclude_mechanism"] = ["LOGIN", "PLAIN"]
        if starttls and not implicit_tls:
            options["tls_context"] = server_context
        self.implicit_tls = implicit_tls
        self._new_controller = lambda: Controller(self.handler, hostname=host, port=self.port,
                                                  ssl_context=server_context if implicit_tls else None, **options)
        self.controller = self._new_controller()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def url(self, *, user: bool = True, query: str = "") -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        credentials = f"{USER}:{PASSWORD}@" if user else ""
        extra = f"&{query}" if query else ""
        return f"{scheme}://{credentials}{self.host}:{self.port}?cafile={self.cafile}{extra}"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> SmtpServer:
        """Listen again on the same port after ``stop()`` (the server was down), keeping what it received."""
        self.controller = self._new_controller()  # an aiosmtpd controller runs once
        return self.start()


def non_loopback_address() -> str | None:
    """This machine's address on its network (not 127.x), to test what is sent to a remote host."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def main() -> None:
    """``python -m tests.support.smtp DIR``: serve with STARTTLS and AUTH until killed; prints the URL (benchmarks)."""
    import sys
    import time
    server = SmtpServer(Path(sys.argv[1]), mode="sink").start()
    print(server.url(), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
