"""Reading Slack payloads: options out of prompts, which events are user posts, thread keys."""

from __future__ import annotations

import json

import pytest

from adapters.slack.parsing import (
    Origin,
    Place,
    dm_key,
    is_direct_message,
    is_user_post,
    mentions,
    parse_prompt,
    place_of,
    team_of,
    view_origin,
)
from adapters.slack.replies import refine_view
from bot.models import ThreadKey


@pytest.mark.parametrize(
    ("text", "prompt", "ratio"),
    [
        ("<@UBOT> a fox --ar 16:9", "a fox", "16:9"),
        ("--aspect 9:16 <@UBOT|banana> tall tower", "tall tower", "9:16"),
        ("a fox --ar=3:2 in snow", "a fox in snow", "3:2"),
        ("a fox --AR 4x3", "a fox", "4:3"),
        ("a fox", "a fox", None),
        ("ratio--ar 16:9 stays", "ratio--ar 16:9 stays", None),
        ("<@UOTHER> and <@UBOT> together", "<@UOTHER> and together", None),
    ],
)
def test_parse_prompt(text: str, prompt: str, ratio: str | None) -> None:
    parsed = parse_prompt(text, bot_user_id="UBOT")
    assert (parsed.text, parsed.ratio) == (prompt, ratio)


def test_mentions() -> None:
    assert mentions("hey <@UBOT> there", "UBOT")
    assert mentions("hey <@UBOT|banana>", "UBOT")
    assert not mentions("hey <@UBOTX>", "UBOT")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "message", "user": "U1", "text": "hi"}, True),
        ({"type": "message", "user": "U1", "subtype": "file_share"}, True),
        ({"type": "message", "user": "U1", "subtype": "thread_broadcast"}, True),
        ({"type": "message", "user": "UBOT", "text": "me"}, False),
        ({"type": "message", "user": "U2", "bot_id": "B2"}, False),
        ({"type": "message", "subtype": "bot_message", "bot_id": "B2"}, False),
        ({"type": "message", "subtype": "message_changed", "message": {}}, False),
        ({"type": "message", "subtype": "message_deleted"}, False),
        ({"type": "message", "user": "U1", "subtype": "channel_join"}, False),
    ],
)
def test_is_user_post(event: dict[str, object], expected: bool) -> None:
    assert is_user_post(event, bot_user_id="UBOT") is expected


def test_dm_keys_and_places() -> None:
    top = {"channel": "D1", "ts": "5.0", "channel_type": "im"}
    threaded = {**top, "thread_ts": "4.0"}
    assert is_direct_message(top) and is_direct_message({"channel": "D9"})
    assert not is_direct_message({"channel": "C1", "channel_type": "channel"})
    assert dm_key("T1", top) == ThreadKey("slack", "T1", "D1", "D1")
    assert dm_key("T1", threaded) == ThreadKey("slack", "T1", "D1", "4.0")
    assert place_of(dm_key("T1", top)) == Place("D1", None)
    assert place_of(ThreadKey("slack", "T1", "C1", "1.0"), anchor_ts="2.0") == Place(
        "C1", "1.0", "2.0"
    )


def test_team_of_every_payload_shape() -> None:
    assert team_of({"team_id": "T1"}) == "T1"
    assert team_of({"team": {"id": "T2"}}) == "T2"
    assert team_of({"user": {"team_id": "T3"}}) == "T3"


def test_a_refine_forms_metadata_names_its_origin_again() -> None:
    origin = Origin(turn_id=42, channel="C1", message_ts="1700000000.000200", thread_ts="1.5")
    assert view_origin(refine_view(origin)) == origin
    assert origin.message_id == "C1:1700000000.000200"
    assert origin.key("T1") == ThreadKey("slack", "T1", "C1", "1.5")


@pytest.mark.parametrize(
    "meta",
    [
        {"turn": True, "channel": "C1", "message_ts": "1.2"},
        {"turn": 0, "channel": "C1", "message_ts": "1.2"},
        {"turn": 7, "channel": "C1:9", "message_ts": "1.2"},
        {"turn": 7, "channel": "C1", "message_ts": "1.2:3"},
        {"turn": 7, "channel": ["C1"], "message_ts": "1.2"},
    ],
    ids=["bool-turn", "zero-turn", "colon-channel", "colon-ts", "list-channel"],
)
def test_metadata_not_of_the_form_we_write_names_no_origin(meta: dict[str, object]) -> None:
    assert view_origin({"private_metadata": json.dumps(meta)}) is None
