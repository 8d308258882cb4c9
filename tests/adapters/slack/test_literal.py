"""What the bot echoes (prompts, the model's words, names in errors) is shown literally, never
as a mention or a disguised link, nothing unfurls, and every text fits Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.models import ThreadKey, Turn, TurnStatus
from tests.fakes.gptproto import FakeGptProto, Outcome
from tests.fakes.slack import slash_command
from tests.fakes.slack.harness import CHANNEL, USER, SlackBot

HOSTILE = "<!here> <!channel> <@U0VICTIM> see <https://evil.example|your bank> & more"
SHOWN = (
    "&lt;!here&gt; &lt;!channel&gt; &lt;@U0VICTIM&gt; see "
    "&lt;https://evil.example|your bank&gt; &amp; more"
)


def units(text: str) -> int:
    """A text's length as Slack measures it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def posts(slack: SlackBot) -> list[dict[str, object]]:
    return [call.params for call in slack.fake.called("chat.postMessage")]


def assert_no_unfurls(slack: SlackBot) -> None:
    assert posts(slack), "nothing was posted"
    for params in posts(slack):
        assert (params.get("unfurl_links"), params.get("unfurl_media")) == (False, False), params


async def test_the_asked_note_of_imagine_shows_mentions_and_links_literally(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    await slack.sender.command(slash_command(HOSTILE))
    # Slack sends what was typed as "<b> & c" escaped already: shown as typed, not twice.
    await slack.sender.command(slash_command("a &lt;b&gt; &amp; c"))
    await slack.settle()
    asked = sorted(
        (m for m in slack.fake.messages.values() if m.thread_ts is None), key=lambda m: m.ts
    )
    assert [m.text for m in asked] == [
        f"<@{USER}> asked: {SHOWN}",
        f"<@{USER}> asked: a &lt;b&gt; &amp; c",
    ]
    assert_no_unfurls(slack)
    assert len(gptproto.generations) == 2


async def test_the_refine_note_shows_the_instruction_literally(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention("a lake")
    await slack.settle()
    await slack.click("refine", slack.result_message(event["ts"]))
    view = await slack.opened_form()
    await slack.submit(view, HOSTILE)
    await slack.settle()
    assert f"<@{USER}> asked: {SHOWN}" in slack.said(event["ts"])
    assert_no_unfurls(slack)


async def test_the_models_words_are_literal_in_a_section_when_they_fit(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    gptproto.queue(Outcome.image(HOSTILE + " " + "blah " * 400))
    event = await slack.mention("a lighthouse")
    await slack.settle()
    [section, *_] = slack.result_message(event["ts"]).blocks
    words = section["text"]["text"]
    assert words.startswith(SHOWN)
    assert units(words) <= 3_000
    assert "<" not in words
    assert_no_unfurls(slack)


async def test_words_too_long_for_a_section_are_literal_in_a_message_of_their_own(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    gptproto.queue(Outcome.image(HOSTILE + " " + "blah " * 2_000))
    event = await slack.mention("a lighthouse")
    await slack.settle()
    words, result = slack.fake.thread_messages(CHANNEL, event["ts"])
    assert words.text.startswith(SHOWN) and words.text.rstrip().endswith("blah")
    assert "<" not in words.text and not words.blocks
    assert [block["type"] for block in result.blocks] == ["context", "actions"]
    assert_no_unfurls(slack)


async def test_a_long_prompt_is_cut_to_fit_the_asked_note(slack: SlackBot) -> None:
    # An emoji counts as two of Slack's characters: 30,000 of them are 60,000.
    await slack.sender.command(slash_command("🍌" * 30_000))
    await slack.settle()
    [asked] = [m for m in slack.fake.messages.values() if m.thread_ts is None]
    assert asked.text.startswith(f"<@{USER}> asked: 🍌🍌")
    assert asked.text.endswith("…")
    assert 38_000 < units(asked.text) <= 39_000


async def test_the_models_words_in_a_refusal_are_literal_and_bounded(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    gptproto.queue(Outcome.text_only(HOSTILE + " " + "x" * 50_000))
    event = await slack.mention("a comet")
    await slack.settle()
    [said] = slack.said(event["ts"])
    assert said.startswith(f":warning: The model answered with words instead of an image: {SHOWN}")
    assert units(said) <= 39_000 and said.endswith("…")


async def test_a_file_name_in_a_refusal_is_literal(slack: SlackBot) -> None:
    notes = slack.fake.add_file("<!channel>.txt", b"words", mimetype="text/plain")
    await slack.mention("use this", files=[notes])
    await slack.settle()
    [whisper] = slack.whispered()
    assert "'&lt;!channel&gt;.txt' is not an image" in whisper.text
    assert "<!channel>" not in whisper.text


async def test_the_restart_notice_quotes_the_prompt_literally(slack: SlackBot) -> None:
    turn = Turn(
        id=7, thread_id=3, number=2, parent_id=None, user=USER, prompt="<!channel> a harbour",
        ratio=None, model="gemini-2.5-flash-image", inputs=(), outputs=(),
        status=TurnStatus.FAILED, created_at=datetime.now(UTC),
    )  # fmt: skip
    key = ThreadKey("slack", "T0001", CHANNEL, "1700000000.000100")
    await slack.adapter.notify_failed([(turn, key)])
    [said] = slack.said("1700000000.000100")
    assert "&lt;!channel&gt; a harbour" in said and "<!channel>" not in said
    assert_no_unfurls(slack)
