"""The fake Slack speaks the real protocol: slack-bolt and slack-sdk run unmodified against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.local_server import serve_locally
from tests.fakes.slack import (
    LOGIN_PAGE,
    EventSender,
    FakeSlack,
    event_callback,
    message_event,
)

SECRET = "smoke-signing-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as running:
        yield running


async def _serve(app: AsyncApp) -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    server = web.Application()
    server.router.add_post("/slack/events", handle)
    runner, port = await serve_locally(server)
    return runner, f"http://127.0.0.1:{port}/slack/events"


async def test_signed_event_reaches_bolt_and_web_api_calls_land_on_the_fake(
    fake: FakeSlack,
) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    app = AsyncApp(client=client, signing_secret=SECRET)
    seen: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        await say(text="hello back", thread_ts=event["ts"])

    runner, url = await _serve(app)
    try:
        async with EventSender(url, secret=SECRET) as sender:
            event = message_event("<@UBOT> hi", kind="app_mention")
            status, _ = await sender.event(event_callback(event))
            assert status == 200
            [post] = await fake.wait_for("chat.postMessage")
            assert post.params["thread_ts"] == event["ts"]
            assert post.params["text"] == "hello back"
            assert post.token == fake.bot_token
            assert fake.called("auth.test"), "bolt authorizes with auth.test first"

            status, _ = await sender.event(event_callback(event), signature="v0=bad")
            assert status == 401
    finally:
        await runner.cleanup()
    assert len(seen) == 1


async def test_upload_v2_lands_bytes_in_the_thread(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    await client.files_upload_v2(
        content=b"\x89PNG bytes", filename="a.png", channel="C9", thread_ts="1.2"
    )
    [upload] = fake.uploads
    assert (upload.data, upload.channel_id, upload.thread_ts) == (b"\x89PNG bytes", "C9", "1.2")


async def test_private_files_need_the_bot_token(fake: FakeSlack) -> None:
    info = fake.add_file("cat.png", b"PNGDATA")
    async with aiohttp.ClientSession() as session:
        async with session.get(
            info["url_private_download"], headers={"Authorization": f"Bearer {fake.bot_token}"}
        ) as response:
            assert await response.read() == b"PNGDATA"
        async with session.get(info["url_private_download"]) as response:
            assert response.status == 200
            assert await response.text() == LOGIN_PAGE
