"""API keys: generation, parsing and hashing (pure).

A key looks like ``test_k3j9x0a8b2c1_<32 random chars>``: the mode, a visible lookup id and a
secret part. Only ``HMAC-SHA256(server secret, key)`` is stored. Lookup is by the id, then a
constant-time compare of the hash: cheap per request, and a stolen database alone cannot be used
to test key guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

MODES = ("test", "live")
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: ``key`` is shown once, ``key_id`` and ``key_hash`` are stored."""

    key: str
    key_id: str
    key_hash: str
    mode: str


def hash_key(secret: bytes, key: str) -> str:
    """The stored form of a key."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def generate_key(secret: bytes, mode: str) -> NewKey:
    """A new random key of ``mode`` (``test`` or ``live``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    lookup = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    key_id = f"{mode}_{lookup}"
    key = f"{key_id}_{secrets.token_urlsafe(24)}"
    return NewKey(key=key, key_id=key_id, key_hash=hash_key(secret, key), mode=mode)


def parse_key(key: str) -> tuple[str, str] | None:
    """``(mode, key_id)`` of a presented key, or None when it is not of our shape."""
    if len(key) > 100 or not key.isascii():
        return None
    mode, sep, rest = key.partition("_")
    if not sep or mode not in MODES:
        return None
    lookup, sep, secret_part = rest.partition("_")
    if not sep or len(lookup) != 12 or not secret_part:
        return None
    return mode, f"{mode}_{lookup}"


def verify_key(secret: bytes, key: str, stored_hash: str) -> bool:
    """Constant-time check of a presented key against its stored hash."""
    return hmac.compare_digest(hash_key(secret, key), stored_hash)
