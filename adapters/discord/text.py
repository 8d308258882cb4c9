"""Text the bot sends: no pings, no link previews, within Discord's limits."""

from __future__ import annotations

import re

import discord

MAX_CONTENT = 2000
NO_MENTIONS = discord.AllowedMentions.none()

# A URL with a scheme, allowing balanced parentheses (as in wiki links) but not the one that
# closes a masked link `[text](url)`; and invite links, which Discord previews without one.
_LINK = re.compile(
    r"(?<![<\w])"
    r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://|(?:discord(?:app)?\.com/invite|discord\.gg)/)"
    r"[^\s<>()]*(?:\([^\s<>()]*\)[^\s<>()]*)*"
)


def only(user: discord.abc.Snowflake) -> discord.AllowedMentions:
    """Mentions that may ping this one user (a reply to them included) and nobody else."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[user], replied_user=True)


def without_previews(text: str) -> str:
    """Every link in the text wrapped in <...>, which Discord shows as a link but never unfurls."""
    return _LINK.sub(_wrapped, text)


def _wrapped(match: re.Match[str]) -> str:
    link = match[0]
    bare = link.rstrip(".,;:!?'\"")  # the sentence's punctuation, not the link's
    return f"<{bare}>{link[len(bare) :]}" if bare else link


def fit(text: str, limit: int) -> str:
    """The text when it fits in `limit` characters, else cut to fit with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        # A cut inside <link> would leave the link bare, and a bare link is unfurled.
        cut = cut[:opened]
    return cut.rstrip() + "…"


def say(text: str, *, limit: int = MAX_CONTENT) -> str:
    """A message the bot may send as it is: previews off, within Discord's length."""
    return fit(without_previews(text), limit)
