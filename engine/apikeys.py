"""Named API keys: made and revoked with ``tqs keys``, kept only as SHA-256 digests, shown once.

A key is 256 random bits, so a plain digest cannot be guessed back (a slow password hash would
only slow every request). Each key has a scope: ``ingest`` may send sessions, ``read`` may read
them, ``admin`` may do both and change rule settings. The keys in ``TQS_API_KEYS`` (ingest and read)
and ``TQS_ADMIN_API_KEYS`` stay as the bootstrap, named ``env-1``, ``env-admin-1``... in logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from engine.config import Settings
from engine.models import ApiKey

SCOPES = ("ingest", "read", "admin")
_GRANTS = {"ingest": frozenset({"ingest"}), "read": frozenset({"read"}), "admin": frozenset(SCOPES)}
_BOOTSTRAP_GRANTS = frozenset({"ingest", "read"})
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
CACHE_SECONDS = 5.0  # how long a revoked key may still be honoured by a process that saw it just before


class ApiKeyError(ValueError):
    """A key cannot be made or found as asked; the message says why."""


@dataclass(frozen=True)
class KeyHolder:
    """Who presented a key: its name (what logs and the audit trail show) and what it may do."""

    name: str
    grants: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.grants


@dataclass(frozen=True)
class KeyListing:
    name: str
    scope: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def digest(key: str | bytes) -> str:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).hexdigest()


def create_key(database: peewee.Database, name: str, scope: str, now: dt.datetime) -> str:
    """Store a new key's digest under ``name`` and return the key (the only time it is seen)."""
    check_name(name)
    if scope not in SCOPES:
        raise ApiKeyError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    key = "tqs_" + secrets.token_urlsafe(32)
    with database.connection_context(), database.atomic():
        if ApiKey.select().where(ApiKey.name == name).exists():
            raise ApiKeyError(f"a key named {name!r} exists already (names are never reused, revoked or not)")
        ApiKey.create(name=name, scope=scope, key_hash=digest(key), created_at=now)
    return key


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ApiKeyError(f"name {name!r} must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    if name.startswith("env-"):
        raise ApiKeyError("names starting 'env-' are the bootstrap keys' (TQS_API_KEYS, TQS_ADMIN_API_KEYS)")


def revoke_key(database: peewee.Database, name: str, now: dt.datetime) -> None:
    with database.connection_context(), database.atomic():
        key = ApiKey.get_or_none(ApiKey.name == name)
        if key is None:
            raise ApiKeyError(f"no key named {name!r}")
        if key.revoked_at is None:
            ApiKey.update(revoked_at=now).where(ApiKey.id == key.id).execute()


def list_keys(database: peewee.Database) -> list[KeyListing]:
    with database.connection_context():
        return [KeyListing(row.name, row.scope, row.created_at, row.revoked_at)
                for row in ApiKey.select().order_by(ApiKey.created_at, ApiKey.name)]


class KeyRing:
    """Finds the holder of a presented key: the bootstrap keys first, then the stored ones (remembered briefly)."""

    def __init__(self, bootstrap: dict[str, KeyHolder], database: peewee.Database,
                 clock: Callable[[], float] = time.monotonic):
        self._bootstrap = bootstrap
        self._database = database
        self._clock = clock
        self._seen: dict[str, tuple[KeyHolder, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, database: peewee.Database) -> KeyRing:
        bootstrap = {digest(key): KeyHolder(f"env-{i}", _BOOTSTRAP_GRANTS)
                     for i, key in enumerate(settings.api_keys, 1)}
        bootstrap |= {digest(key): KeyHolder(f"env-admin-{i}", _GRANTS["admin"])
                      for i, key in enumerate(settings.admin_api_keys, 1)}
        return cls(bootstrap, database)

    def holder(self, presented: bytes) -> KeyHolder | None:
        if not presented:
            return None
        hashed = digest(presented)
        if hashed in self._bootstrap:
            return self._bootstrap[hashed]
        now = self._clock()
        with self._lock:
            seen = self._seen.get(hashed)
        if seen and seen[1] > now:
            return seen[0]
        row = ApiKey.get_or_none((ApiKey.key_hash == hashed) & ApiKey.revoked_at.is_null())
        if row is None:
            return None
        found = KeyHolder(row.name, _GRANTS[row.scope])
        with self._lock:
            self._seen[hashed] = (found, now + CACHE_SECONDS)
        return found
