"""Student names and reschedule reasons are personal data: sealed at rest with Fernet, opened only to show them.

``TQS_SECRET_KEY`` lists one or more keys, newest first: the first seals, every one opens (MultiFernet),
so a new key can go in front of the old, and ``tqs rotate-key`` re-seals everything under it. Sealed
values carry a prefix, so a value stored before encryption was switched on still reads (and the next
rotation seals it). Tutor names are not student data and stay plaintext: admins search them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import peewee
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from engine.logs import log_event

PREFIX = "fernet:"
KEY_FILE = "secret.key"
logger = logging.getLogger("tutor_quality.engine")


class UnreadableSecret(ValueError):
    """A sealed value that none of the configured keys opens (a key was dropped too soon)."""


class PersonalDataCipher:
    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one secret key is needed")
        self._fernet = MultiFernet([Fernet(fernet_key(key)) for key in keys])
        self._digest_keys = [hashlib.sha256(b"tutor-quality fingerprint " + fernet_key(key)).digest() for key in keys]

    def fingerprints(self, text: str) -> tuple[str, ...]:
        """HMAC-SHA256 of ``text`` under each key, the first key's first: a digest of personal data that
        only a holder of the key can test a guess against."""
        return tuple(hmac.new(key, text.encode(), hashlib.sha256).hexdigest() for key in self._digest_keys)

    def seal(self, text: str | None) -> str | None:
        if not isinstance(text, str):
            return text
        return PREFIX + self._fernet.encrypt(text.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        if not isinstance(stored, str) or not stored.startswith(PREFIX):
            return stored  # stored before encryption: the next rotation seals it
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise UnreadableSecret("a stored value was sealed with a key TQS_SECRET_KEY no longer lists") from None

    def reseal(self, stored: str | None) -> str | None:
        """The value sealed under the first key (plaintext sealed, old keys' tokens re-sealed)."""
        if not isinstance(stored, str) or not stored.startswith(PREFIX):
            return self.seal(stored)
        try:
            return PREFIX + self._fernet.rotate(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise UnreadableSecret("a stored value was sealed with a key TQS_SECRET_KEY no longer lists") from None


def fernet_key(key: str) -> bytes:
    """A Fernet key as given, or one derived from any other secret of at least 32 characters."""
    try:
        Fernet(key)
        return key.encode()
    except ValueError:
        return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())


@functools.lru_cache(maxsize=8)
def cipher_for(secret_keys: tuple[str, ...], data_dir: Path) -> PersonalDataCipher:
    """The configured keys; without any, a key kept in the data directory (made once, readable only by us)."""
    return PersonalDataCipher(list(secret_keys) or [_local_key(data_dir)])


def _local_key(data_dir: Path) -> str:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor, draft = tempfile.mkstemp(prefix=f".{KEY_FILE}.", dir=data_dir)  # mode 0600
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(draft, path)  # appears whole or not at all; if another process made it first, theirs wins
            log_event(logger, "secret_key_generated", logging.WARNING, path=str(path),
                      advice="set TQS_SECRET_KEY in production")
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    key = path.read_text().strip()
    try:
        Fernet(key)  # never derived from a damaged file: that would be a key anyone could compute
    except ValueError:
        raise ValueError(f"{path} does not hold a Fernet key: restore it from your backup, or set "
                         "TQS_SECRET_KEY") from None
    return key


class CipherProxy:
    """Where the models find the cipher, initialised with the services (as Peewee's DatabaseProxy is).

    The latest cipher seals; opening also tries the ones before it, so a process that builds services
    more than once with different keys (the test suite does) still reads what it sealed earlier.
    """

    def __init__(self) -> None:
        self._ciphers: list[PersonalDataCipher] = []

    def initialize(self, cipher: PersonalDataCipher) -> None:
        if cipher in self._ciphers:
            self._ciphers.remove(cipher)
        self._ciphers.append(cipher)

    @property
    def cipher(self) -> PersonalDataCipher:
        if not self._ciphers:
            raise RuntimeError("personal data used before build_services set up the cipher")
        return self._ciphers[-1]

    def seal(self, text: str | None) -> str | None:
        return self.cipher.seal(text)

    def fingerprints(self, text: str) -> tuple[str, ...]:
        return self.cipher.fingerprints(text)

    def open(self, stored: str | None) -> str | None:
        try:
            return self.cipher.open(stored)
        except UnreadableSecret:
            for earlier in reversed(self._ciphers[:-1]):
                try:
                    return earlier.open(stored)
                except UnreadableSecret:
                    continue
            raise


personal_data = CipherProxy()


class SealedJSONField(peewee.TextField):
    """JSON that may quote personal data (a rule's insights cite the reasons tutors give): sealed as a whole."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else personal_data.seal(json.dumps(value, sort_keys=True, separators=(",", ":")))

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(personal_data.open(value))


class SealedTextField(peewee.TextField):
    """A text column holding personal data: sealed on the way in, opened on the way out."""

    def db_value(self, value: str | None) -> str | None:
        return personal_data.seal(value)

    def python_value(self, value: str | None) -> str | None:
        return personal_data.open(value)
