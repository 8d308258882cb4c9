"""A prompt as it is sent, and whether there is anything in it to draw."""

from __future__ import annotations

import unicodedata


def clean_prompt(text: str) -> str:
    """The prompt as it is sent: no control characters, no unpaired surrogates, trimmed."""
    # Terminal escapes and NULs mean nothing to the model; a lone surrogate (from a broken
    # client or argv) cannot even be encoded as UTF-8 for the request.
    text = text.encode("utf-8", "replace").decode("utf-8")
    kept = (c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs"))
    return "".join(kept).strip()


def visible(text: str) -> bool:
    """True when the text has a character a person can see (not only spaces or controls)."""
    return any(unicodedata.category(char)[0] not in "CZ" for char in text)
