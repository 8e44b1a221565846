"""Where reports go (``TQS_EMAIL_URL``) and who they go to, parsed once at start-up.

Pure parsing, no I/O: :mod:`engine.config` calls these so a bad URL or address stops
start-up with a message naming the variable; :mod:`notifications.transports` opens what
they describe.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import formataddr, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

SCHEMES = ("smtp", "smtps", "file", "console")
STARTTLS_MODES = ("auto", "require")
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class EmailEndpoint:
    """A transport and its parameters. ``starttls`` is ``auto`` (use it when the server offers it)
    or ``require``; ``cafile`` trusts a private certificate authority (a relay inside the network)."""

    scheme: str
    host: str = ""
    port: int = 0
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    starttls: str = "auto"
    cafile: str = ""
    directory: Path | None = None
    timeout_seconds: float = 30.0

    @property
    def sends_mail(self) -> bool:
        """True for SMTP transports, which reach real mailboxes (and so need real addresses)."""
        return self.scheme in ("smtp", "smtps")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def describe(self) -> str:
        """The endpoint without its credentials, for logs and messages."""
        if self.scheme == "file":
            return f"file://{self.directory}"
        if self.scheme == "console":
            return "console://"
        user = f"{self.username}:***@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def parse_email_url(raw: str) -> EmailEndpoint:
    """``smtp://[user:pass@]host[:port][?starttls=require&cafile=…&timeout=…]``, ``smtps://…``,
    ``file:///dir`` or ``console://``; raises ValueError saying what is wrong."""
    url = urlparse(raw)
    if url.scheme not in SCHEMES:
        raise ValueError(f"must start with one of {', '.join(s + '://' for s in SCHEMES)}")
    if url.scheme == "console":
        return EmailEndpoint("console")
    if url.scheme == "file":
        if not url.path or url.netloc:
            raise ValueError("a file URL names a directory: file:///var/lib/tutor-quality/emails")
        return EmailEndpoint("file", directory=Path(unquote(url.path)))
    if not url.hostname:
        raise ValueError(f"names no host: {url.scheme}://host:port")
    try:
        port = url.port or DEFAULT_PORTS[url.scheme]
    except ValueError:
        raise ValueError("the port must be a number between 1 and 65535") from None
    options = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
    unknown = set(options) - {"starttls", "cafile", "timeout"}
    if unknown:
        raise ValueError(f"unknown option {sorted(unknown)[0]!r}; use starttls, cafile or timeout")
    starttls = options.get("starttls", "auto")
    if starttls not in STARTTLS_MODES:
        raise ValueError("starttls must be auto or require")
    if url.scheme == "smtps" and "starttls" in options:
        raise ValueError("smtps:// is TLS from the first byte; starttls applies to smtp:// only")
    cafile = options.get("cafile", "")
    if cafile and not Path(cafile).is_file():
        raise ValueError(f"cafile {cafile!r} is not a readable file")
    try:
        timeout = float(options.get("timeout", 30))
    except ValueError:
        raise ValueError("timeout must be a number of seconds") from None
    if not 1 <= timeout <= 300:
        raise ValueError("timeout must be between 1 and 300 seconds")
    if bool(url.username) != bool(url.password):
        raise ValueError("give both a user name and a password, or neither")
    return EmailEndpoint(url.scheme, url.hostname, port, unquote(url.username or ""), unquote(url.password or ""),
                         starttls, cafile, None, timeout)


def parse_address(raw: str) -> str:
    """One address, optionally with a display name (``Tutor Quality <tq@example.com>``), normalised."""
    if any(ch in raw for ch in "\r\n\0"):
        raise ValueError("an address must be on one line")
    name, address = parseaddr(raw)
    if not address or address.count("@") != 1:
        raise ValueError(f"{raw.strip()!r} is not an email address")
    local, domain = address.split("@")
    if not local or not domain or any(ch.isspace() for ch in address):
        raise ValueError(f"{raw.strip()!r} is not an email address")
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{raw.strip()!r} is not an email address ({exc})") from None
    return formataddr((name, address)) if name else address


def parse_addresses(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses, each checked; at least one."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise ValueError("name at least one address")
    return tuple(dict.fromkeys(parse_address(part) for part in parts))


def address_domain(address: str) -> str:
    """The domain of an address (for Message-IDs that are unique to the sender)."""
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def is_loopback(host: str) -> bool:
    """Only the machine itself: credentials may cross such a connection unencrypted."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
