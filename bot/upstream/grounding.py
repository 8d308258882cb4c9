"""The web pages a grounded answer drew on (Google Search grounding), read defensively.

A source's title and address end up in a chat message under the image: only http(s)
addresses, one source per address, a few of them, titles short enough for a footer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from bot.models import Source

MAX_SOURCES = 10
MAX_TITLE = 120  # characters; a page title longer than this is cut, marked with an ellipsis
MAX_URI = 2048  # beyond this an address is not a link anyone would follow

_METADATA_KEYS = ("groundingMetadata", "grounding_metadata")
# groundingChunks is today's shape; groundingAttributions the older one some gateways relay.
_LIST_KEYS = (
    "groundingChunks", "grounding_chunks", "groundingAttributions", "grounding_attributions",
)  # fmt: skip


def read_sources(candidates: Iterable[Any]) -> tuple[Source, ...]:
    """The distinct sources of every candidate's groundingMetadata, at most MAX_SOURCES."""
    found: dict[str, Source] = {}
    for metadata in _metadata(candidates):
        for key in _LIST_KEYS:
            items = metadata.get(key)
            for item in items if isinstance(items, list) else ():
                source = _source(item)
                if source is not None:
                    found.setdefault(source.uri, source)
                if len(found) >= MAX_SOURCES:
                    return tuple(found.values())
    return tuple(found.values())


def _metadata(candidates: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    for candidate in candidates:
        if not isinstance(candidate, Mapping):
            continue
        for key in _METADATA_KEYS:
            metadata = candidate.get(key)
            if isinstance(metadata, Mapping):
                yield metadata
                break


def _source(item: Any) -> Source | None:
    web = item.get("web") if isinstance(item, Mapping) else None
    if not isinstance(web, Mapping):
        return None
    uri = web.get("uri")
    if not isinstance(uri, str) or not _linkable(uri):
        return None
    title = web.get("title")
    words = " ".join(title.split()) if isinstance(title, str) else ""
    if len(words) > MAX_TITLE:
        words = words[: MAX_TITLE - 1].rstrip() + "…"
    return Source(title=words or (urlsplit(uri).hostname or uri), uri=uri)


def _linkable(uri: str) -> bool:
    # No whitespace, control characters or brackets: they would break out of a markdown or
    # mrkdwn link (a legal address has them percent-encoded).
    if len(uri) > MAX_URI or any(ch <= " " or ch in '\x7f<>"' for ch in uri):
        return False
    parts = urlsplit(uri)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
