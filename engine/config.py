"""Settings read once from the environment (12-factor) and passed explicitly.

This module is the only place that reads ``os.environ``; everything else receives
a :class:`Settings`. A bad value fails at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from notifications.endpoint import EmailEndpoint, parse_address, parse_addresses, parse_email_url

WINDOW_DAYS = (7, 30, 90)
EMAIL_POLICIES = ("every-session", "flagged-only", "state-change", "digest", "off")
SESSION_REPORT_POLICIES = ("every-session", "flagged-only")  # the policies that report each stored session
RESCORE_REPORT_POLICIES = (*SESSION_REPORT_POLICIES, "state-change")  # the policies that report after a rescore


class ConfigError(ValueError):
    """A configuration variable holds a value we cannot use; the message names it."""


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``seconds`` for each API key."""

    requests: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults a newcomer gets."""

    data_dir: Path = Path("data")
    database_url: str = ""
    queue_url: str = ""
    rules: frozenset[str] | None = None
    disabled_rules: frozenset[str] = frozenset()
    rule_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    admin_api_keys: tuple[str, ...] = field(default=(), repr=False)  # may also change rule settings
    secret_keys: tuple[str, ...] = field(default=(), repr=False)  # the first encrypts personal data, all decrypt
    ingest_rate_limit: RateLimit | None = field(default_factory=lambda: RateLimit(1000, 10.0))  # per API key
    max_body_bytes: int = 4 * 1024 * 1024
    sweep_after_seconds: int = 180
    sweep_interval_seconds: int = 30
    rescore_delay_seconds: float = 0.5  # how long a touched tutor waits while other scoring tasks are queued
    rescore_max_delay_seconds: float = 60.0  # ... and while a backfill is being stored
    rescore_lease_seconds: int = 60
    log_level: str = "INFO"
    dashboard_user: str = "admin"
    dashboard_password: str = field(default="", repr=False)
    dashboard_cookie_secret: str = field(default="", repr=False)
    dashboard_refresh_seconds: int = 30
    dashboard_origins: tuple[str, ...] = ()
    dashboard_url: str = "http://localhost:5006/"
    email_url: str = field(default="", repr=False)
    email_to: tuple[str, ...] = ()
    email_from: str = ""
    email_policy: str = "every-session"
    digest_hour: int = 7
    email_retry_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'tutor_quality.db'}")
        if not self.queue_url:
            object.__setattr__(self, "queue_url", f"sqlite:///{self.data_dir / 'queue.db'}")
        if not self.email_url:
            object.__setattr__(self, "email_url", f"file://{(self.data_dir / 'emails').absolute()}")
        _check(self)
        _check_email(self)

    @property
    def email_endpoint(self) -> EmailEndpoint:
        """Where reports go (already validated at start-up)."""
        return parse_email_url(self.email_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``TQS_*`` variables; unset ones keep their defaults.

        Variables this module does not know are kept in ``rule_env``: the rules declare their own
        settings (``TQS_RULE_<RULE>_<SETTING>``), and the registry checks them when it loads the rules.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"rule_env": {name: value for name, value in env.items()
                                                 if name.startswith("TQS_") and name not in _VARIABLES}}
        for name, (attr, parse) in _VARIABLES.items():
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[attr] = parse(raw.strip())
            except ValueError as exc:
                raise ConfigError(f"{name}={_shown(name, raw)}: {exc}") from None
        return cls(**values)


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 3600:
        raise ValueError("must be a number of seconds between 0 and 3600")
    return value


def _names(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _keys(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _secret_keys(raw: str) -> tuple[str, ...]:
    keys = _keys(raw)
    if any(len(key) < 32 for key in keys):
        raise ValueError("each key must be a Fernet key or at least 32 characters: "
                         "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")
    return keys


def _rate_limit(raw: str) -> RateLimit | None:
    if raw.lower() == "off":
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?", raw)
    if not match or int(match[1]) < 1 or not 0 < float(match[2]) <= 86400:
        raise ValueError("must be REQUESTS/SECONDS per API key, such as 1000/10, or off")
    return RateLimit(int(match[1]), float(match[2]))


def _cookie_secret(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("must be at least 32 characters: python -c 'import secrets; print(secrets.token_hex(32))'")
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _url(raw: str) -> str:
    if "://" not in raw:
        raise ValueError("must be a URL such as sqlite:///path or postgresql://host/db")
    return raw


def _hour(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 23:
        raise ValueError("must be an hour of the day, 0 to 23 (UTC)")
    return value


def _policy(raw: str) -> str:
    if raw not in EMAIL_POLICIES:
        raise ValueError(f"must be one of {', '.join(EMAIL_POLICIES)}")
    return raw


def _email_url(raw: str) -> str:
    parse_email_url(raw)
    return raw


def _web_url(raw: str) -> str:
    url = urlparse(raw)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ValueError("must be an http:// or https:// address, such as https://quality.example.com/")
    return raw


_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "TQS_DATA_DIR": ("data_dir", Path),
    "TQS_DATABASE_URL": ("database_url", _url),
    "TQS_QUEUE_URL": ("queue_url", _url),
    "TQS_RULES": ("rules", _names),
    "TQS_DISABLED_RULES": ("disabled_rules", _names),
    "TQS_API_KEYS": ("api_keys", _keys),
    "TQS_ADMIN_API_KEYS": ("admin_api_keys", _keys),
    "TQS_SECRET_KEY": ("secret_keys", _secret_keys),
    "TQS_INGEST_RATE_LIMIT": ("ingest_rate_limit", _rate_limit),
    "TQS_MAX_BODY_BYTES": ("max_body_bytes", _positive_int),
    "TQS_SWEEP_AFTER_SECONDS": ("sweep_after_seconds", _positive_int),
    "TQS_SWEEP_INTERVAL_SECONDS": ("sweep_interval_seconds", _positive_int),
    "TQS_RESCORE_DELAY_SECONDS": ("rescore_delay_seconds", _seconds),
    "TQS_RESCORE_MAX_DELAY_SECONDS": ("rescore_max_delay_seconds", _seconds),
    "TQS_RESCORE_LEASE_SECONDS": ("rescore_lease_seconds", _positive_int),
    "TQS_LOG_LEVEL": ("log_level", _log_level),
    "TQS_DASHBOARD_USER": ("dashboard_user", str),
    "TQS_DASHBOARD_PASSWORD": ("dashboard_password", str),
    "TQS_DASHBOARD_COOKIE_SECRET": ("dashboard_cookie_secret", _cookie_secret),
    "TQS_DASHBOARD_REFRESH_SECONDS": ("dashboard_refresh_seconds", _positive_int),
    "TQS_DASHBOARD_ORIGINS": ("dashboard_origins", _keys),
    "TQS_DASHBOARD_URL": ("dashboard_url", _web_url),
    "TQS_EMAIL_URL": ("email_url", _email_url),
    "TQS_EMAIL_TO": ("email_to", parse_addresses),
    "TQS_EMAIL_FROM": ("email_from", parse_address),
    "TQS_EMAIL_POLICY": ("email_policy", _policy),
    "TQS_DIGEST_HOUR": ("digest_hour", _hour),
    "TQS_EMAIL_RETRY_SECONDS": ("email_retry_seconds", _seconds),
}


SECRET_VARIABLES = {"TQS_API_KEYS", "TQS_ADMIN_API_KEYS", "TQS_SECRET_KEY", "TQS_DASHBOARD_PASSWORD",
                    "TQS_DASHBOARD_COOKIE_SECRET"}


def _shown(name: str, raw: str) -> str:
    """The value as an error message may show it: secrets hidden, and the password of a URL masked."""
    if name in SECRET_VARIABLES:
        return "(hidden)"
    return repr(re.sub(r"(://[^/:@\s]*:)[^/\s]*@", r"\1***@", raw))  # to the last @: a password may hold one


def _check(settings: Settings) -> None:
    both = sorted((settings.rules or frozenset()) & settings.disabled_rules)
    if settings.rules is not None and both:
        raise ConfigError(f"TQS_RULES and TQS_DISABLED_RULES both name {', '.join(both)}: choose one")


def _check_email(settings: Settings) -> None:
    """Reports to real mailboxes need real addresses; the file and console transports default them."""
    try:
        endpoint = parse_email_url(settings.email_url)
    except ValueError as exc:
        raise ConfigError(f"TQS_EMAIL_URL: {exc}") from None
    if settings.email_policy not in EMAIL_POLICIES:
        raise ConfigError(f"TQS_EMAIL_POLICY={settings.email_policy!r} must be one of {', '.join(EMAIL_POLICIES)}")
    if endpoint.sends_mail and settings.email_policy != "off":
        for variable, value in (("TQS_EMAIL_TO", settings.email_to), ("TQS_EMAIL_FROM", settings.email_from)):
            if not value:
                raise ConfigError(f"{variable} must be set when TQS_EMAIL_URL sends mail ({endpoint.describe()})")
    if not settings.email_to:
        object.__setattr__(settings, "email_to", ("admins@localhost",))
    if not settings.email_from:
        object.__setattr__(settings, "email_from", "Tutor Quality <tutor-quality@localhost>")
