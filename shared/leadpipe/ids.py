"""Identifiers: time-ordered, URL-safe, optionally deterministic (for idempotent job creation)."""

from __future__ import annotations

import hashlib
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower-case


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str, *, at_ms: int | None = None, seed: bytes | None = None) -> str:
    """A ULID-like id: 10 chars of millisecond time then 16 chars of randomness, so ids sort by creation time.

    With ``seed`` the random part is derived from it, so the same input always yields the same id (used to make the
    job of an S3 event idempotent across redeliveries).
    """
    ms = int(time.time() * 1000) if at_ms is None else at_ms
    rand = hashlib.sha256(seed).digest()[:10] if seed is not None else os.urandom(10)
    return f"{prefix}_{_b32(ms, 10)}{_b32(int.from_bytes(rand, 'big'), 16)}"


def is_id(value: str, prefix: str) -> bool:
    head, sep, body = value.partition("_")
    return head == prefix and sep == "_" and len(body) == 26 and all(c in _ALPHABET for c in body)
