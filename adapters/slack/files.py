"""Downloading the files users attach: with the bot token, only from Slack's own hosts, and
never more than the download cap, whatever a file declares."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common import read_within
from bot.errors import BotError, ConfigError, ImageTooLarge, InputError, NotAnImage
from bot.models import Attachment
from bot.upstream import open_client

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
# Slack's types for a file it could not classify: such a file may still be an image, which
# only its bytes can tell.
_UNTYPED = frozenset({"application/octet-stream", "binary/octet-stream"})
_SLACK_HOSTS = ("slack.com", "slack-edge.com")
_MISSING_SCOPE = (
    "I could not read '{name}': Slack sent its sign-in page instead of the file, which means "
    "the app is missing the files:read scope. Ask a workspace admin to add files:read to the "
    "app and reinstall it."
)


class SlackFiles:
    """Fetches a message's files as attachments; the token never leaves Slack's hosts."""

    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        web: AsyncWebClient,
        max_mb: float,
        timeout: float = 60.0,
    ) -> None:
        self._token = token
        self._api = httpx.URL(api_url)
        self._web = web
        self._max_mb = max_mb
        self._max_bytes = int(max_mb * 1024 * 1024)
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def open(self) -> None:
        # Redirects are followed by hand so that every hop is checked before the token is sent.
        self._http = await open_client(read_timeout=self._timeout)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @staticmethod
    def count_images(files: list[dict[str, Any]]) -> int:
        """How many of a message's files could be images, from what the event says of them."""
        return sum(1 for file in files if _could_be_image(file))

    def screen(self, files: list[dict[str, Any]]) -> None:
        """Refuse, before any download, a file that says it is no image or is over the cap."""
        for file in files:
            self._check_declared(file, _name(file))

    async def fetch_all(self, files: list[dict[str, Any]]) -> tuple[Attachment, ...]:
        """Every file of a message, in order."""
        return tuple([await self.fetch(file) for file in files])

    async def fetch(self, file: dict[str, Any]) -> Attachment:
        """One file's bytes; a login page, a foreign host or an oversize file is a clear error."""
        file = await self._complete(file)
        name = _name(file)
        self._check_declared(file, name)
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise InputError(f"Slack did not give me a download link for '{name}'.")
        return Attachment(data=await self._download(str(url), name), name=name)

    def _over_cap(self, name: str) -> ImageTooLarge:
        return ImageTooLarge(name, f"it is over the {self._max_mb:g} MB download limit")

    def _check_declared(self, file: dict[str, Any], name: str) -> None:
        """What the file object says of the file: its type and its size."""
        if not _could_be_image(file):
            raise NotAnImage(name, f"Slack says it is {_mimetype(file)}")
        if _declared_size(file) > self._max_bytes:
            raise self._over_cap(name)

    async def _complete(self, file: dict[str, Any]) -> dict[str, Any]:
        """Events may carry a stub (file_access: check_file_info): ask files.info for the rest."""
        if file.get("url_private") or file.get("url_private_download") or not file.get("id"):
            return file
        response = await self._web.files_info(file=str(file["id"]))
        info = response.get("file")
        return dict(info) if isinstance(info, dict) else file

    def trusted(self, url: str) -> bool:
        """Slack's file hosts over https, or the configured API host (GovSlack, tests)."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        host = parsed.host.lower()
        if parsed.scheme == self._api.scheme and host == self._api.host.lower():
            return parsed.port == self._api.port
        return parsed.scheme == "https" and any(
            host == domain or host.endswith("." + domain) for domain in _SLACK_HOSTS
        )

    async def _download(self, url: str, name: str) -> bytes:
        assert self._http is not None, "SlackFiles.open() was not called"
        for _ in range(MAX_REDIRECTS + 1):
            if not self.trusted(url):
                logger.warning("refused to fetch %r from a host that is not Slack's", name)
                raise InputError(
                    f"I can only read files stored in Slack, and '{name}' points elsewhere."
                )
            try:
                async with self._http.stream("GET", url, headers=self._headers) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return await self._read(response, name)
            except httpx.HTTPError as exc:
                logger.warning("download of %r failed: %s", name, type(exc).__name__)
                raise BotError(
                    f"I could not download '{name}' from Slack. Please try again."
                ) from None
        raise InputError(f"Slack redirected the download of '{name}' too many times.")

    @property
    def _headers(self) -> dict[str, str]:
        # The bytes as stored: a compressed answer would be inflated before it could be
        # counted, and a small body can inflate to gigabytes.
        return {"Authorization": f"Bearer {self._token}", "Accept-Encoding": "identity"}

    async def _read(self, response: httpx.Response, name: str) -> bytes:
        self._check_headers(response, name)
        data = await read_within(
            response, limit=self._max_bytes, too_large=lambda: self._over_cap(name)
        )
        if data.lstrip()[:16].lower().startswith((b"<!doctype html", b"<html")):
            raise ConfigError(_MISSING_SCOPE.format(name=name))
        return data

    def _check_headers(self, response: httpx.Response, name: str) -> None:
        """What the answer says of itself, before a byte of its body is read."""
        if response.status_code != 200:
            raise BotError(
                f"Slack would not give me '{name}' (HTTP {response.status_code}). Please try again."
            )
        headers = response.headers
        if "text/html" in headers.get("content-type", "").lower():
            raise ConfigError(_MISSING_SCOPE.format(name=name))
        if headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise BotError(f"Slack sent '{name}' compressed, which I do not accept for files.")


def _name(file: dict[str, Any]) -> str:
    return str(file.get("name") or file.get("title") or file.get("id") or "file")


def _mimetype(file: dict[str, Any]) -> str:
    return str(file.get("mimetype") or "").strip().lower()


def _could_be_image(file: dict[str, Any]) -> bool:
    """Slack's word for a file's type; a file it gives no type (a stub) may be anything."""
    mimetype = _mimetype(file)
    return not mimetype or mimetype.startswith("image/") or mimetype in _UNTYPED


def _declared_size(file: dict[str, Any]) -> int:
    """The size the file object declares; one that is not a number declares nothing."""
    size = file.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    return int(size) if isinstance(size, str) and size.isascii() and size.isdigit() else 0
