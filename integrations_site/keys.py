"""Loading and checking the two keys the hub cannot run without.

``SECRET_KEY`` signs sessions and tokens; ``FERNET_KEYS`` encrypt every credential at rest.
In production both come from the environment and start-up stops with a message that says how to
make one when they are missing or malformed. In DEBUG, when they are not set, they are generated
once into ``var/`` (mode 0600) so that ``make run`` works on a fresh machine.

Error messages never contain a key: they name the variable and the position of the bad entry.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "FERNET_KEY_HOWTO",
    "SECRET_KEY_HOWTO",
    "load_fernet_keys",
    "load_secret_key",
    "validate_fernet_keys",
]

# Instructions, not a key.
SECRET_KEY_HOWTO = (
    'generate one with: python -c "from django.core.management.utils import '  # noqa: S105
    'get_random_secret_key; print(get_random_secret_key())"'
)
FERNET_KEY_HOWTO = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)
MIN_SECRET_KEY_LENGTH = 50


def _generated_file(path: Path, make_value) -> str:
    """Read ``path``, or create it (mode 0600) holding ``make_value()``; say so on stderr."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make_value()
    # O_EXCL: two processes starting at once must not both write (and disagree on) the key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    sys.stderr.write(
        f"DEBUG: generated a development key into {path} (mode 0600). "
        "Production must set it in the environment instead.\n"
    )
    return value


def load_secret_key(value: str, *, debug: bool, var_dir: Path) -> str:
    """Return the Django ``SECRET_KEY`` to use, or stop with an actionable message."""
    if not value:
        if debug:
            return _generated_file(var_dir / "secret_key", lambda: secrets.token_urlsafe(64))
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set and DEBUG is off: set SECRET_KEY in the environment; "
            f"{SECRET_KEY_HOWTO}"
        )
    if len(value) < MIN_SECRET_KEY_LENGTH or value.startswith("django-insecure"):
        if debug:
            return value
        raise ImproperlyConfigured(
            f"SECRET_KEY is malformed: it must be at least {MIN_SECRET_KEY_LENGTH} random "
            f"characters and not a 'django-insecure' placeholder; {SECRET_KEY_HOWTO}"
        )
    return value


def validate_fernet_keys(keys: list[str]) -> list[str]:
    """Check that every entry is a Fernet key (32 url-safe base64 bytes) and return them."""
    if not keys:
        raise ImproperlyConfigured(f"FERNET_KEYS is empty; {FERNET_KEY_HOWTO}")
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured(
                f"FERNET_KEYS entry #{position} of {len(keys)} is not a valid Fernet key "
                "(it must be 32 url-safe base64-encoded bytes, 44 characters; entries are "
                f"separated by commas, the first one encrypts); {FERNET_KEY_HOWTO}"
            )
    return keys


def load_fernet_keys(value: str, *, debug: bool, var_dir: Path) -> list[str]:
    """Return the list of Fernet keys (first encrypts, all decrypt) or stop with a message."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        if debug:
            from cryptography.fernet import Fernet

            generated = _generated_file(
                var_dir / "fernet_key", lambda: Fernet.generate_key().decode()
            )
            return validate_fernet_keys([generated])
        raise ImproperlyConfigured(
            "FERNET_KEYS is not set and DEBUG is off: it encrypts every stored credential. "
            f"Set FERNET_KEYS in the environment (comma-separated, newest first); "
            f"{FERNET_KEY_HOWTO}"
        )
    return validate_fernet_keys(keys)
