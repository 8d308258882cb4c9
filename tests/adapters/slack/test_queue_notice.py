"""The 'You are #N in line' notice: posted once, edited at most once per interval, then removed."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.parsing import Place
from adapters.slack.replies import QueueNotice, SlackPoster
from tests.fakes.slack import FakeSlack


async def test_updates_are_throttled_and_the_last_position_is_shown() -> None:
    async with FakeSlack() as fake:
        poster = SlackPoster(AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
        notice = QueueNotice(poster, Place("C1", "1.0"), interval=0.05, clock=lambda: 0.0)
        for position in (3, 2, 1):
            await notice.update(position)
        [posted] = fake.called("chat.postMessage")
        assert "#3 in line" in posted.params["text"]
        assert fake.called("chat.update") == []  # 2 and 1 came within the interval

        [edited] = await fake.wait_for("chat.update")
        assert "#1 in line" in edited.params["text"]
        await notice.update(0)
        [deleted] = fake.called("chat.delete")
        assert deleted.params["ts"] == posted_ts(fake)
        assert len(fake.called("chat.update")) == 1
        assert fake.thread_messages("C1", "1.0") == []


def posted_ts(fake: FakeSlack) -> str:
    [message] = fake.messages.values()
    return message.ts
