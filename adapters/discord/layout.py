"""How a result reads on Discord: its text (words, sources, preview notes, footer) and buttons.

Every image of a message has its own row of buttons carrying its turn id; Discord allows five
rows of five buttons, and with at most four variations (bot.engine.MAX_COUNT) a fifth row is
always left for Delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import discord

from adapters.common import Capabilities, can_upscale
from adapters.discord.client import OriginalButton, ResultButton
from adapters.discord.text import MAX_CONTENT, fit, without_previews
from bot.models import Image, Reply, Source, Turn

SHORTENED = "-# The model wrote more than fits in one message; this is the start of it."
MAX_ROWS = 5
MAX_PER_ROW = 5
SOURCES_ROOM = 900  # characters of a message the sources may take, so the words keep room
TITLE_LIMIT = 80
# Kept as they are in a source's address; the rest (spaces, <>, parentheses, brackets) is
# percent-encoded, so an address can neither end its link early nor unfurl.
_URI_SAFE = ":/?#@!$&'*+,;=%~-._"
_TITLE_DROPPED = str.maketrans("", "", "[]()<>`\\")


@dataclass(frozen=True)
class Shown:
    """One image of a result as it is posted."""

    turn: Turn
    index: int  # the image's place among its turn's outputs
    original: Image
    posted: Image  # the original, or a preview of it within the upload limit
    note: str | None = None  # the preview's footer; None: the original is posted

    @property
    def previewed(self) -> bool:
        return self.note is not None


# -- text ---------------------------------------------------------------------------------------


def footer(reply: Reply) -> str:
    """`-# 16:9 · 2K · model · turn 3` (turns 3, 4, 5 for variations)."""
    turns = list(dict.fromkeys(turn for turn, _ in reply.branches)) or [reply.turn]
    first = turns[0]
    parts = [first.ratio or "auto ratio", *([first.size] if first.size else []), first.model]
    numbers = ", ".join(str(turn.number) for turn in turns)
    return f"-# {' · '.join(parts)} · turn{'s' if len(turns) > 1 else ''} {numbers}"


def result_content(reply: Reply, shown: Sequence[Shown] = ()) -> str:
    """The model's words (cut to fit), the sources, what each preview is, and the footer."""
    several = len(shown) > 1
    notes = [
        f"-# {f'Image {number}: ' if several else ''}{item.note}"
        for number, item in enumerate(shown, start=1)
        if item.note is not None
    ]
    tail = "\n".join([*notes, footer(reply)])
    listed = sources_text(reply.sources, room=min(SOURCES_ROOM, MAX_CONTENT - len(tail) - 1))
    if listed:
        tail = f"{listed}\n{tail}"
    text = without_previews(reply.text.strip())
    room = MAX_CONTENT - len(tail) - 1
    if len(text) > room:
        tail = f"{SHORTENED}\n{tail}"
        text = fit(text, room - len(SHORTENED) - 1)
    return f"{text}\n{tail}" if text else tail


def source_link(source: Source) -> str | None:
    """`[title](<address>)`: a masked link that never unfurls; None for a non-web address."""
    parts = urlsplit(source.uri.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    address = quote(source.uri.strip(), safe=_URI_SAFE)
    title = " ".join(source.title.translate(_TITLE_DROPPED).split())
    if not title or "://" in title or "discord.gg" in title.lower():
        title = parts.netloc  # Discord refuses a masked link whose text is itself a link
    title = discord.utils.escape_markdown(fit(title, TITLE_LIMIT), as_needed=False)
    return f"[{title}](<{address}>)"


def sources_text(sources: Sequence[Source], *, room: int) -> str | None:
    """`Sources: [a](<…>) · [b](<…>)`, as many as fit in `room` characters, and how many not."""
    links = [link for link in map(source_link, sources) if link is not None]
    head, shown = "Sources: ", list[str]()
    for link in links:
        left = len(links) - len(shown) - 1
        more = f" · and {left} more" if left else ""
        if len(head + " · ".join([*shown, link]) + more) > room:
            break
        shown.append(link)
    if not shown:
        return None
    left = len(links) - len(shown)
    return head + " · ".join([*shown, *([f"and {left} more"] if left else [])])


# -- buttons ------------------------------------------------------------------------------------


def result_view(
    reply: Reply, shown: Sequence[Shown], *, capabilities: Capabilities | None = None
) -> discord.ui.View:
    """A row per turn (Re-roll, Refine, Upscale where larger exists, Original per preview),
    numbered when the message shows several; Delete last, on its own row when they are."""
    turns = list(dict.fromkeys(item.turn for item in shown)) or [reply.turn]
    numbered = list(enumerate(shown, start=1))
    several = len(turns) > 1
    view = discord.ui.View(timeout=None)
    for row, turn in enumerate(turns[: MAX_ROWS - 1]):
        suffix = str(row + 1) if several else ""
        actions = ["reroll", "refine", *(["upscale"] if can_upscale(turn, capabilities) else [])]
        for action in actions:
            view.add_item(ResultButton(action, turn.id, suffix=suffix, row=row))
        mine = [(number, item) for number, item in numbered if item.turn == turn]
        _add_originals(view, mine, numbered=len(shown) > 1, row=row)
    last = max(item.row or 0 for item in view.children)
    crowded = sum(1 for item in view.children if item.row == last) >= MAX_PER_ROW
    view.add_item(
        ResultButton("delete", reply.turn.id, row=last + 1 if several or crowded else last)
    )
    return view


def _add_originals(
    view: discord.ui.View, mine: Sequence[tuple[int, Shown]], *, numbered: bool, row: int
) -> None:
    """An Original button for each of this turn's images that is shown as a preview."""
    taken = sum(1 for item in view.children if item.row == row)
    previewed = [(number, item) for number, item in mine if item.previewed]
    for number, item in previewed[: MAX_PER_ROW - taken]:
        suffix = str(number) if numbered else ""
        extension = item.original.extension
        view.add_item(OriginalButton(item.turn.id, item.index, extension, suffix=suffix, row=row))
