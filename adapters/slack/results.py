"""A result as Slack shows it: each image's caption and buttons, the model's words, sources.

Slack refuses a section block whose text passes 3,000 characters and cuts a message's text
past 40,000; what the model wrote may be longer than both, so it is measured here first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from adapters.common import Capabilities, can_upscale
from adapters.slack.text import SECTION_LIMIT, TEXT_LIMIT, clip, escape, literal, units
from bot.models import Reply, Source, Turn

REROLL = "reroll"
REFINE = "refine"
UPSCALE = "upscale"

SHORTENED = " (the model's text was shortened to fit in a Slack message)"
MAX_SOURCES = 10
TITLE_LIMIT = 120
# Characters a link's address keeps as they are; the rest (`|`, `<`, `>`, spaces) are
# percent-encoded, so a source's address can neither end the link early nor relabel it.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~-._"

Block = dict[str, Any]


def caption(turn: Turn) -> str:
    """`#5 · 16:9 · 2K · model`; the size only where one was asked for or kept."""
    parts = [f"#{turn.number}", turn.ratio or "auto ratio", *([turn.size] if turn.size else [])]
    return " · ".join([*parts, turn.model])


def branch_blocks(turn: Turn, *, upscale: bool) -> list[Block]:
    """One image's caption and its Re-roll / Refine (/ Upscale) buttons, carrying its turn."""
    buttons = [_button("Re-roll", REROLL, turn.id), _button("Refine", REFINE, turn.id)]
    if upscale:
        buttons.append(_button("Upscale", UPSCALE, turn.id))
    return [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": caption(turn)}]},
        {"type": "actions", "block_id": f"turn:{turn.id}", "elements": buttons},
    ]


def _button(label: str, action_id: str, turn_id: int) -> Block:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": str(turn_id),
    }


def fits_a_section(said: str) -> bool:
    """Whether the model's words, made literal, fit in one section block."""
    return units(escape(said)) <= SECTION_LIMIT


def long_words(said: str) -> str | None:
    """The model's words as a message of their own when a section cannot hold them."""
    if not said.strip() or fits_a_section(said):
        return None
    return literal(said, TEXT_LIMIT, note=SHORTENED)


def result_blocks(
    turns: Sequence[Turn],
    *,
    said: str = "",
    sources: Sequence[Source] = (),
    capabilities: Capabilities | None = None,
) -> list[Block]:
    """The model's words (when they fit), the sources, then every image's buttons."""
    blocks: list[Block] = []
    if said.strip() and fits_a_section(said):
        blocks.append(_section(literal(said, SECTION_LIMIT, note=SHORTENED)))
    listed = sources_text(sources)
    if listed is not None:
        blocks.append(_section(listed))
    for turn in turns:
        blocks += branch_blocks(turn, upscale=can_upscale(turn, capabilities))
    return blocks


def blocks_for(reply: Reply, capabilities: Capabilities | None) -> list[Block]:
    turns = [turn for turn, _ in reply.branches] or [reply.turn]
    return result_blocks(turns, said=reply.text, sources=reply.sources, capabilities=capabilities)


def summary(reply: Reply) -> str:
    """The message's own text: what notifications and screen readers show."""
    numbers = [turn.number for turn, _ in reply.branches] or [reply.turn.number]
    if len(numbers) == 1:
        return f"Image #{numbers[0]}: Re-roll or Refine it, or reply here to change it."
    listed = ", ".join(f"#{number}" for number in numbers)
    return f"Images {listed}: each has its own buttons; a reply here changes #{numbers[0]}."


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- grounding sources -----------------------------------------------------------------------


def source_link(source: Source) -> str | None:
    """`<uri|title>` with both made inert; None for an address that is not a web page's."""
    uri = source.uri.strip()
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    address = escape(quote(uri, safe=_URI_SAFE))
    title = " ".join(source.title.split()) or parts.netloc
    return f"<{address}|{clip(escape(title), TITLE_LIMIT)}>"


def sources_text(sources: Sequence[Source]) -> str | None:
    """The sources as one section's text: as many links as fit, and how many did not."""
    links = [link for link in map(source_link, sources) if link is not None]
    if not links:
        return None
    head = "*Sources:* "
    shown: list[str] = []
    for link in links[:MAX_SOURCES]:
        line = head + " · ".join([*shown, link])
        if units(line) + len(" · and 99 more") > SECTION_LIMIT:
            break
        shown.append(link)
    left = len(links) - len(shown)
    more = [f"and {left} more"] if left else []
    return head + " · ".join([*shown, *more])
