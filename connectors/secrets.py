"""Secret values as objects that cannot be printed by accident, and their Fernet encryption.

A decrypted credential is a :class:`SecretValue`: ``str()``, ``repr()``, f-strings, logging and
templates all see a mask; only :meth:`SecretValue.reveal` returns the plaintext, so every place
that needs the secret says so in the code. A value whose key is gone is an
:class:`UnreadableSecret`, which keeps its ciphertext so that saving its row never destroys it.

The Fernet instance is built from ``settings.FERNET_KEYS`` at each use (cached per key list), so
key rotation and tests that override the setting take effect without a restart.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = [
    "InvalidToken",
    "SecretUnreadable",
    "SecretValue",
    "UnreadableSecret",
    "current_fernet",
    "fingerprint",
    "primary_fernet",
]

MASK = "••••••"
# Below this length the last characters would reveal too much of the secret.
FINGERPRINT_MIN_LENGTH = 16


class SecretUnreadable(Exception):
    """The stored ciphertext cannot be decrypted with any key in ``FERNET_KEYS``."""

    def __init__(self):
        super().__init__(
            "unreadable: encryption key missing (the key that encrypted this credential is no "
            "longer in FERNET_KEYS; put it back, or replace the secret)"
        )


def fingerprint(plaintext: str) -> str:
    """What the console shows of a secret: its length, and the last 4 characters if long."""
    if len(plaintext) >= FINGERPRINT_MIN_LENGTH:
        return f"{MASK}{plaintext[-4:]} ({len(plaintext)} chars)"
    return f"{MASK} ({len(plaintext)} chars)"


class SecretValue:
    """A decrypted secret. Printing it shows a mask; :meth:`reveal` gives the plaintext."""

    __slots__ = ("_plaintext",)

    def __init__(self, plaintext: str):
        self._plaintext = plaintext

    readable = True

    def reveal(self) -> str:
        return self._plaintext

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._plaintext)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"<SecretValue {MASK}>"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other) -> bool:
        if isinstance(other, SecretValue) and other.readable:
            return other.reveal() == self._plaintext
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("SecretValue", self._plaintext))

    def __bool__(self) -> bool:
        return bool(self._plaintext)

    def __reduce__(self):
        raise TypeError("a SecretValue cannot be pickled (it would leave the process in clear)")


class UnreadableSecret(SecretValue):
    """A stored secret whose Fernet key is no longer configured. Keeps the ciphertext intact."""

    __slots__ = ("ciphertext",)
    readable = False

    def __init__(self, ciphertext: bytes):
        super().__init__("")
        self.ciphertext = ciphertext

    def reveal(self) -> str:
        raise SecretUnreadable()

    @property
    def fingerprint(self) -> str:
        return "unreadable: encryption key missing"

    def __str__(self) -> str:
        return "unreadable: encryption key missing"

    def __repr__(self) -> str:
        return "<UnreadableSecret>"

    def __bool__(self) -> bool:
        return True

    __hash__ = SecretValue.__hash__


@functools.lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = [Fernet(key.encode() if isinstance(key, str) else key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def current_fernet() -> MultiFernet:
    """All configured keys: encrypts with the first, decrypts with any."""
    return _fernets(tuple(settings.FERNET_KEYS))[0]


def primary_fernet() -> Fernet:
    """The first configured key alone (used to tell whether a token needs re-encrypting)."""
    return _fernets(tuple(settings.FERNET_KEYS))[1]
