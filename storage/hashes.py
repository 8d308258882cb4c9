"""Image hashes as the SQL stores key them: the 32 bytes of a SHA-256 digest."""

from __future__ import annotations


def hash_bytes(sha256_hex: str) -> bytes | None:
    """A hex digest as the 32 bytes the tables store; None for anything that is not one."""
    try:
        raw = bytes.fromhex(sha256_hex)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None
