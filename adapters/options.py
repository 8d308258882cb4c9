"""Options typed into a prompt (`--ar 16:9 --model M --size 4K --n 4 --search`), on every platform.

They are taken out of the text wherever they appear; what a model cannot do is refused by
the engine before anything is sent, with a sentence that says what it can do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import BadArgument

_RATIO = re.compile(r"(?<!\S)--(?:ar|aspect)(?:\s+|=)(\d+)\s*[:x/]\s*(\d+)(?!\S)", re.I)
_MODEL = re.compile(r"(?<!\S)--model(?:\s+|=)([A-Za-z0-9][\w.\-/]{0,79})(?!\S)", re.I)
_SIZE = re.compile(r"(?<!\S)--size(?:\s+|=)(512|[124]k)(?!\S)", re.I)
_COUNT = re.compile(r"(?<!\S)--(?:n|count)(?:\s+|=)(\d{1,3})(?!\S)", re.I)
_SEARCH = re.compile(r"(?<!\S)--search(?!\S)", re.I)
# Phones and Macs turn a typed "--" into a dash; an option written that way is still one.
_DASHED = re.compile(r"(?<!\S)[\u2013\u2014](?=(?:ar|aspect|model|size|n|count|search)\b)", re.I)
_LEFT_OVER = re.compile(r"(?<!\S)--(ar|aspect|model|size|n|count)(?:(?:=|\s+)(\S+))?", re.I)

HELP = (
    "Options: --ar W:H (aspect ratio), --model ID, --size 512|1K|2K|4K, --n 1-4 (how many "
    "images), --search (ground on Google Search)."
)


@dataclass(frozen=True)
class PromptOptions:
    """A prompt with the options taken out of it."""

    text: str
    ratio: str | None = None
    model: str | None = None
    size: str | None = None
    count: int = 1
    search: bool = False


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 - the last one typed wins
        pass
    return found


def parse_options(text: str) -> PromptOptions:
    """The text without its options, and the options; an option missing its value is refused."""
    text = _DASHED.sub("--", text)
    ratio = _last(_RATIO, text)
    model = _last(_MODEL, text)
    size = _last(_SIZE, text)
    count = _last(_COUNT, text)
    search = _SEARCH.search(text) is not None
    for pattern in (_RATIO, _MODEL, _SIZE, _COUNT, _SEARCH):
        text = pattern.sub(" ", text)
    stray = _LEFT_OVER.search(text)
    if stray is not None:
        given = f" ('{stray.group(2)[:20]}' is not one)" if stray.group(2) else ""
        raise BadArgument(f"The option --{stray.group(1)} needs a value it takes{given}. {HELP}")
    return PromptOptions(
        text=" ".join(text.split()),
        ratio=f"{int(ratio.group(1))}:{int(ratio.group(2))}" if ratio else None,
        model=model.group(1) if model else None,
        size=size.group(1).upper() if size else None,
        count=int(count.group(1)) if count else 1,
        search=search,
    )
