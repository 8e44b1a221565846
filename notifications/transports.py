"""Send a message to one recipient over the transport ``TQS_EMAIL_URL`` names: SMTP, files or the console.

One recipient per call, so the caller can record each delivery as it happens (a crash
mid-report never re-sends to those already recorded). SMTP: STARTTLS whenever the server
offers it (``?starttls=require`` makes it mandatory), implicit TLS with ``smtps://``, and
credentials never sent over an unencrypted connection except to this machine.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol, TextIO

from notifications.endpoint import EmailEndpoint


class DeliveryError(Exception):
    """The message could not be handed over; worth retrying later (the server or network may recover)."""


class RecipientRefused(Exception):  # noqa: N818 (a verdict, not a failure of ours)
    """The server refused this recipient for good (a 5xx reply): retrying will not help."""


class Sender(Protocol):
    def send(self, message: EmailMessage, recipient: str) -> str:
        """Hand the message over for ``recipient``; returns what the transport said (for the record)."""


@contextlib.contextmanager
def open_transport(endpoint: EmailEndpoint, stdout: TextIO | None = None) -> Iterator[Sender]:
    """A connected sender for a run of messages; closed (SMTP ``QUIT``) afterwards."""
    if endpoint.scheme == "file":
        yield FileSender(endpoint.directory)
    elif endpoint.scheme == "console":
        yield ConsoleSender(stdout or sys.stdout)
    else:
        sender = SmtpSender(endpoint)
        try:
            yield sender
        finally:
            sender.close()


class SenderPool:
    """Keeps each thread's SMTP connection open between reports (at most ``idle_seconds`` unused, and checked
    with NOOP before reuse): a TLS handshake and login per report cost more than rendering the report."""

    def __init__(self, endpoint: EmailEndpoint, idle_seconds: float = 30.0):
        self.endpoint, self.idle_seconds = endpoint, idle_seconds
        self._local = threading.local()

    @contextlib.contextmanager
    def open(self) -> Iterator[Sender]:
        if not self.endpoint.sends_mail:
            with open_transport(self.endpoint) as sender:
                yield sender
            return
        sender = self._reusable()
        try:
            yield sender
        except BaseException:
            self.close()
            raise
        self._local.used = time.monotonic()

    def _reusable(self) -> SmtpSender:
        sender: SmtpSender | None = getattr(self._local, "sender", None)
        if sender is not None and (time.monotonic() - self._local.used > self.idle_seconds or not sender.alive()):
            self.close()
            sender = None
        if sender is None:
            sender = self._local.sender = SmtpSender(self.endpoint)
        return sender

    def close(self) -> None:
        """Quit this thread's connection, if one is open."""
        sender = getattr(self._local, "sender", None)
        if sender is not None:
            sender.close()
        self._local.sender = None


class FileSender:
    """Writes ``<Message-ID>--<recipient>.eml``: a resend overwrites the same file, so files never duplicate."""

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, message: EmailMessage, recipient: str) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{_file_part(message['Message-ID'])}--{_file_part(recipient)}.eml"
            partial = path.with_suffix(".partial")
            partial.write_bytes(bytes(message))
            partial.replace(path)  # atomic: a reader never sees half a message
        except OSError as exc:
            raise DeliveryError(f"cannot write to {self.directory}: {exc}") from exc
        return f"written {path.name}"


class ConsoleSender:
    def __init__(self, stream: TextIO):
        self.stream = stream

    def send(self, message: EmailMessage, recipient: str) -> str:
        self.stream.write(f"----- email to {recipient} -----\n{message.as_string()}\n")
        self.stream.flush()
        return "printed"


class SmtpSender:
    """One SMTP connection, opened on the first message and reused for the rest."""

    def __init__(self, endpoint: EmailEndpoint):
        self.endpoint = endpoint
        self.client: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, recipient: str) -> str:
        client = self.client or self._connect()
        envelope_from = parseaddr(str(message["From"]))[1]
        try:
            refused = client.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, (0, b""))
            return self._refused(code, reply)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(f"{self.endpoint.describe()}: {_describe(exc)}") from exc
        if recipient in refused:
            return self._refused(*refused[recipient])
        return f"250 accepted by {self.endpoint.host}"

    def _refused(self, code: int, reply: bytes) -> str:
        text = f"{code} {reply.decode(errors='replace')}".strip()
        if 500 <= code < 600:
            raise RecipientRefused(text)
        raise DeliveryError(f"{self.endpoint.describe()}: recipient deferred: {text}")

    def _connect(self) -> smtplib.SMTP:
        endpoint = self.endpoint
        context = ssl.create_default_context(cafile=endpoint.cafile or None)
        try:
            if endpoint.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(endpoint.host, endpoint.port, timeout=endpoint.timeout_seconds,
                                                        context=context)
                encrypted = True
            else:
                client = smtplib.SMTP(endpoint.host, endpoint.port, timeout=endpoint.timeout_seconds)
                client.ehlo()
                encrypted = False
                if client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                    encrypted = True
                elif endpoint.starttls == "require":
                    client.close()
                    raise DeliveryError(f"{endpoint.describe()} does not offer STARTTLS, and the URL requires it")
            if endpoint.username:
                if not encrypted and not endpoint.loopback:
                    client.close()
                    raise DeliveryError(f"{endpoint.describe()} offers no TLS: refusing to send the password in clear "
                                        "(use smtps:// or a server with STARTTLS)")
                client.login(endpoint.username, endpoint.password)
        except DeliveryError:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{endpoint.describe()}: {_describe(exc)}") from exc
        self.client = client
        return client

    def alive(self) -> bool:
        """Not yet connected, or the server still answers: worth reusing."""
        if self.client is None:
            return True
        try:
            return self.client.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.client.quit()
            self.client = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        return f"{exc.smtp_code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    return f"{type(exc).__name__}: {exc}"


def _file_part(text: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", (text or "message").strip("<>"))[:120]
