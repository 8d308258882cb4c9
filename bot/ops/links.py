"""Signed, expiring links to a result's exact bytes, served by the bot's own HTTP server.

A link names an image by its content hash and carries its expiry and an HMAC-SHA256 of both:
nothing is stored per link, so any replica that shares the key (LINK_SECRET, or the API key
they share) serves any link, and one stops working on its own when it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pydantic import SecretStr

from bot.config import Settings
from bot.errors import ConfigError
from bot.models import EXTENSIONS

Clock = Callable[[], float]

# A fixed label: the link key derived from the API key is useless for anything else, and the
# API key cannot be recovered from it (or from any signature made with it).
KEY_LABEL = b"banana-bot/result-links/v1"
_NAMED = frozenset(EXTENSIONS.values()) | {"bin"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")


def link_key(link_secret: SecretStr | None, api_key: SecretStr | None) -> bytes:
    """The signing key: from LINK_SECRET when set, else from GPTPROTO_API_KEY; never either."""
    secret = link_secret if link_secret is not None else api_key
    if secret is None:
        raise ConfigError("PUBLIC_URL is set, but neither LINK_SECRET nor GPTPROTO_API_KEY is.")
    return hmac.new(secret.get_secret_value().encode(), KEY_LABEL, hashlib.sha256).digest()


class Verdict(Enum):
    VALID = "valid"
    FORGED = "forged"  # malformed, altered, or signed with another key
    EXPIRED = "expired"


@dataclass(frozen=True)
class Checked:
    """A link as the server read it: what it names, until when, and whether to honour it."""

    verdict: Verdict
    sha256: str = ""
    expires: int = 0


class Links:
    """Makes and checks the links; url_for is what adapters call for a result's original."""

    def __init__(
        self,
        *,
        public_url: str,
        key: bytes,
        ttl_seconds: float,
        clock: Clock = time.time,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the link key is too short")
        self._base = public_url.rstrip("/")
        self._key = key
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def __repr__(self) -> str:  # never the key
        return f"Links({self._base!r}, ttl={self.ttl_seconds:g} s)"

    def url_for(self, image_sha256: str, *, mime: str) -> str:
        """{PUBLIC_URL}/files/{sha}.{ext}?expires=<unix>&sig=<hex>, valid for the TTL."""
        if not _SHA256.fullmatch(image_sha256):
            raise ValueError("expected an image's sha256 as 64 lowercase hex digits")
        extension = EXTENSIONS.get(mime, "bin")
        expires = int(self._clock() + self.ttl_seconds)
        signature = self._sign(image_sha256, extension, expires)
        return f"{self._base}/files/{image_sha256}.{extension}?expires={expires}&sig={signature}"

    def check(self, name: str, *, expires: str, sig: str) -> Checked:
        """Whether the link for the file name ("<sha>.<ext>") with these query values holds."""
        sha256, _, extension = name.partition(".")
        well_formed = (
            _SHA256.fullmatch(sha256)
            and extension in _NAMED
            and _EXPIRES.fullmatch(expires)
            and _SIGNATURE.fullmatch(sig)
        )
        if not well_formed:
            return Checked(Verdict.FORGED)
        expected = self._sign(sha256, extension, int(expires))
        # Compared in constant time: how long a wrong guess takes says nothing of the right one.
        if not hmac.compare_digest(expected, sig):
            return Checked(Verdict.FORGED)
        if int(expires) <= self._clock():
            return Checked(Verdict.EXPIRED, sha256, int(expires))
        return Checked(Verdict.VALID, sha256, int(expires))

    def seconds_left(self, expires: int) -> int:
        """How long a link that expires then may still be kept by a browser's cache."""
        return max(0, int(expires - self._clock()))

    def _sign(self, sha256: str, extension: str, expires: int) -> str:
        message = f"files\n{sha256}.{extension}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def links_from(settings: Settings) -> Links | None:
    """Signed links to results' exact bytes, when PUBLIC_URL says where users reach the server."""
    if settings.public_url is None:
        return None
    return Links(
        public_url=str(settings.public_url),
        key=link_key(settings.link_secret, settings.gptproto_api_key),
        ttl_seconds=settings.link_ttl_hours * 3600,
    )
