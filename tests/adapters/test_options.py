"""Options typed into a prompt, the same on every platform."""

from __future__ import annotations

import pytest

from adapters.options import PromptOptions, parse_options
from bot.errors import BadArgument


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a fox", PromptOptions("a fox")),
        (
            "a fox --ar 16:9 --model gemini-3-pro-image --size 4k --n 3 --search at dusk",
            PromptOptions("a fox at dusk", "16:9", "gemini-3-pro-image", "4K", 3, True),
        ),
        ("--aspect=21x9 a fox --count=2", PromptOptions("a fox", ratio="21:9", count=2)),
        ("a fox --ar 1:1 --ar 4:5", PromptOptions("a fox", ratio="4:5")),  # the last one wins
        # A phone's smart punctuation turns -- into a dash.
        (
            "a fox \u2014ar 16:9 \u2013n 2 \u2014search",
            PromptOptions("a fox", "16:9", count=2, search=True),
        ),
        # Dashes inside words and unknown flags stay part of the prompt.
        ("a well-lit room --vivid", PromptOptions("a well-lit room --vivid")),
        ("size 4K and n 2", PromptOptions("size 4K and n 2")),
    ],
)
def test_options_are_taken_out_of_the_prompt(text: str, parsed: PromptOptions) -> None:
    assert parse_options(text) == parsed


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a fox --size 8K", "--size needs a value it takes ('8K' is not one)"),
        ("a fox --n", "--n needs a value"),
        ("a fox --model", "--model needs a value"),
        ("a fox --ar wide", "--ar needs a value it takes ('wide' is not one)"),
    ],
)
def test_an_option_without_a_value_it_takes_is_refused(text: str, said: str) -> None:
    with pytest.raises(BadArgument) as refused:
        parse_options(text)
    assert said in refused.value.user_message
    assert "--size 512|1K|2K|4K" in refused.value.user_message
