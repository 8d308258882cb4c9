"""Texts made safe to post: what others wrote shown literally, and every text within its limit.

Slack reads `<...>` in a message as markup (mentions such as `<!here>`, links with a label
of the writer's choosing) and `&` as the start of an entity, so a prompt or the model's words
are escaped before they are posted. Slack counts its limits in UTF-16 code units: an emoji
counts twice.
"""

from __future__ import annotations

import re

# Slack truncates a message's `text` past 40,000 characters and refuses a section block's
# text over 3,000; both are kept short of that.
TEXT_LIMIT = 39_000
SECTION_LIMIT = 3_000
ELLIPSIS = "…"

_ENTITY = re.compile(r"&(?:amp|lt|gt);")
_UNENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_LONGEST_ENTITY = len("&amp;")


def escape(text: str) -> str:
    """Plain text as Slack shows it literally: `&`, `<` and `>` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Text Slack sent (where a typed `<` arrives as `&lt;`) back as the writer typed it."""
    return _ENTITY.sub(lambda found: _UNENTITIES[found.group(0)], text)


def units(text: str) -> int:
    """The length Slack measures: UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def clip(text: str, limit: int = TEXT_LIMIT, *, note: str = "") -> str:
    """The text when it fits; else cut to fit with an ellipsis and the note, never mid-entity."""
    if units(text) <= limit:
        return text
    tail = ELLIPSIS + note
    budget = max(0, limit - units(tail))
    end = used = 0
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            break
        end += 1
    cut = text[:end]
    amp = cut.rfind("&", max(0, len(cut) - _LONGEST_ENTITY + 1))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # an entity cut in half would show as stray characters
    return cut + tail


def literal(text: str, limit: int = TEXT_LIMIT, *, note: str = "") -> str:
    """Plain text (the model's words, a file's name in an error) to show as it is."""
    return clip(escape(text), limit, note=note)


def quoted(slack_text: str, limit: int = TEXT_LIMIT) -> str:
    """What a user wrote in Slack, to show as they wrote it: their mentions and links inert."""
    return literal(unescape(slack_text), limit)
