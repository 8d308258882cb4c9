"""A message's files are counted and sized from what the event declares before any is
fetched, and a download stops at the cap even when the file lied about its size."""

from __future__ import annotations

import asyncio
import io

from PIL import Image as PilImage

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack.harness import CHANNEL, SlackBot, StartSlack

MB = 1024 * 1024


def png() -> bytes:
    out = io.BytesIO()
    PilImage.new("RGB", (16, 16), (30, 30, 200)).save(out, format="PNG")
    return out.getvalue()


async def test_ten_big_files_are_refused_by_count_and_none_is_fetched(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    image = png()

    async def ten_files(index: int) -> str:
        files = [slack.fake.add_file(f"m{index}-{n}.png", image, size=20 * MB) for n in range(10)]
        event = await slack.mention(f"compose these, take {index}", files=files)
        return str(event["ts"])

    # Six such messages at once: before, each fetched all its 200 MB first.
    asked = await asyncio.gather(*(ten_files(index) for index in range(6)))
    await slack.settle()

    assert slack.fake.downloads == []
    assert slack.fake.called("files.info") == []
    for ts in asked:
        [whisper] = [w for w in slack.whispered() if w.thread_ts == ts]
        assert whisper.text == "Too many images: this model takes at most 3 (you sent 10)."
        assert (CHANNEL, ts) not in slack.fake.reactions
        assert slack.said(ts) == []
    assert gptproto.generations == []


async def test_a_file_declaring_more_than_the_cap_is_refused_unfetched(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    huge = slack.fake.add_file("huge.png", png(), size=40 * MB)
    event = await slack.mention("edit this", files=[huge])
    await slack.settle()

    assert slack.fake.downloads == []
    [whisper] = slack.whispered()
    assert whisper.thread_ts == event["ts"]
    assert whisper.text == "'huge.png' is too large: it is over the 25 MB download limit."
    assert slack.said(event["ts"]) == []
    assert gptproto.generations == []


async def test_a_body_bigger_than_it_declared_is_cut_off_at_the_cap(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(adapter={"max_download_mb": 1})
    liar = slack.fake.add_growing_file("liar.png", png(), padding=64 * MB)
    event = await slack.mention("edit this", files=[liar])
    await slack.settle()

    [download] = slack.fake.downloads
    # The bytes as stored: nothing inflates a small body past the cap before it is counted.
    assert download.headers.get("Accept-Encoding") == "identity"
    [end] = await slack.fake.wait_for("download.end")
    assert not end.params["complete"]
    assert end.params["sent"] < 32 * MB  # the reader hung up: what went out is socket buffers
    [said] = slack.said(event["ts"])
    assert "'liar.png' is too large: it is over the 1 MB download limit" in said
    assert gptproto.generations == []
