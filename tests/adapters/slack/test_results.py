"""How a result reads in Slack: options in prompts, each image's buttons, words, sources."""

from __future__ import annotations

import pytest

from adapters.common import can_upscale
from adapters.slack.parsing import parse_prompt, prompt_request
from adapters.slack.results import (
    MAX_SOURCES,
    SHORTENED,
    long_words,
    result_blocks,
    source_link,
    sources_text,
)
from adapters.slack.text import SECTION_LIMIT, TEXT_LIMIT, units
from bot.errors import BadArgument
from bot.models import Source, ThreadKey, Turn, TurnStatus
from bot.upstream import BUILTIN

KEY = ThreadKey("slack", "T1", "C1", "1.2")


def turn(number: int, *, model: str = "gemini-3.1-flash-image", size: str | None = None) -> Turn:
    return Turn(
        id=100 + number, thread_id=1, number=number, parent_id=None, user="U1",
        prompt="a fox", ratio="16:9", model=model, inputs=(), outputs=("x",),
        status=TurnStatus.DONE, size=size,
    )  # fmt: skip


def test_every_option_is_taken_out_of_a_prompt_with_the_mention() -> None:
    prompt = parse_prompt(
        "<@UBOT> a fox --model gemini-3-pro-image --size 4k --n 3 --search --ar 21:9",
        bot_user_id="UBOT",
    )
    request = prompt_request(prompt, key=KEY, user="U1", reply_to=7, claims=("c",))
    assert (request.text, request.model, request.size) == ("a fox", "gemini-3-pro-image", "4K")
    assert (request.count, request.search, request.ratio) == (3, True, "21:9")
    assert (request.reply_to, request.claims) == (7, ("c",))


def test_an_option_without_its_value_is_refused() -> None:
    with pytest.raises(BadArgument, match="--size"):
        parse_prompt("a fox --size")


def test_each_image_has_its_own_buttons_carrying_its_turn() -> None:
    turns = [turn(n) for n in (3, 4, 5, 6)]
    blocks = result_blocks(turns, capabilities=BUILTIN.get)
    rows = [block for block in blocks if block["type"] == "actions"]
    assert [row["block_id"] for row in rows] == ["turn:103", "turn:104", "turn:105", "turn:106"]
    for row, shown in zip(rows, turns, strict=True):
        assert [(b["action_id"], b["value"]) for b in row["elements"]] == [
            ("reroll", str(shown.id)),
            ("refine", str(shown.id)),
            ("upscale", str(shown.id)),
        ]


@pytest.mark.parametrize(
    ("model", "size", "offered"),
    [
        ("gemini-3.1-flash-image", None, True),
        ("gemini-3.1-flash-image", "2K", True),
        ("gemini-3.1-flash-image", "4K", False),
        ("gemini-3-pro-image", "1K", True),
        ("gemini-3.1-flash-lite-image", None, False),
        ("gemini-2.5-flash-image", None, False),
        ("gemini-2.5-flash-image-preview", None, False),  # retired: no row at all
    ],
)
def test_upscale_is_offered_only_where_a_larger_size_exists(
    model: str, size: str | None, offered: bool
) -> None:
    assert can_upscale(turn(1, model=model, size=size), BUILTIN.get) is offered


def test_short_words_go_in_a_section_long_ones_in_a_message_under_the_limit() -> None:
    [section, *_] = result_blocks([turn(1)], said="A fox & <b>")
    assert section["text"]["text"] == "A fox &amp; &lt;b&gt;"
    assert long_words("A fox") is None
    said = "🦊 & words " * 20_000
    assert not [b for b in result_blocks([turn(1)], said=said) if b["type"] == "section"]
    words = long_words(said)
    assert words is not None and units(words) <= TEXT_LIMIT < 40_000
    assert words.endswith("…" + SHORTENED)
    assert words.startswith("🦊 &amp; words")


def test_a_source_is_a_link_that_cannot_be_relabelled_or_break_out() -> None:
    link = source_link(Source("<!channel> | news", "https://example.com/a|b?x=1&y=<2>"))
    assert link == "<https://example.com/a%7Cb?x=1&amp;y=%3C2%3E|&lt;!channel&gt; | news>"
    assert source_link(Source("x", "javascript:alert(1)")) is None
    assert source_link(Source("", "https://example.org/p")) == (
        "<https://example.org/p|example.org>"
    )


def test_sources_are_bounded_in_number_and_length() -> None:
    many = [Source(f"page {n}", f"https://example.com/{n}/" + "a" * 400) for n in range(30)]
    text = sources_text(many)
    assert text is not None and units(text) <= SECTION_LIMIT
    assert text.count("<https://") <= MAX_SOURCES
    assert text.endswith("more")
    few = sources_text([Source("one", "https://one.example"), Source("two", "https://two.ex")])
    assert few == "*Sources:* <https://one.example|one> · <https://two.ex|two>"
    assert sources_text([]) is None
