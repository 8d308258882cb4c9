"""Socket Mode over the fake's websocket, and the adapter's start-up checks."""

from __future__ import annotations

import pytest
from aiohttp import web

from adapters.slack import SlackAdapter
from bot.errors import ConfigError
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import FakeSlack, event_callback, message_event, slash_command
from tests.fakes.slack.harness import (
    EngineFactory,
    SlackBot,
    running_slack,
    slack_settings,
    unexpected_errors,
)


async def test_an_envelope_is_handled_once_and_acked(
    make_engine: EngineFactory, gptproto: FakeGptProto
) -> None:
    engine = await make_engine()
    async with (
        FakeSlack() as fake,
        running_slack(fake=fake, engine=engine, socket_mode=True) as slack,
    ):
        [opened] = fake.called("apps.connections.open")
        assert opened.token == fake.app_token
        await fake.wait_for("socket.connect")

        event = message_event("<@UBOT> a fox over the socket", kind="app_mention")
        payload = event_callback(event)
        first = await fake.send_envelope(payload, retry_attempt=0)
        await fake.wait_for("socket.ack", lambda call: call.params["envelope_id"] == first)
        again = await fake.send_envelope(payload, retry_attempt=1, retry_reason="timeout")
        await fake.wait_for("socket.ack", lambda call: call.params["envelope_id"] == again)
        await slack.settle()

        [request] = gptproto.generations
        [upload] = fake.uploads
        assert (upload.thread_ts, upload.data) == (event["ts"], request.produced[0])
        assert unexpected_errors(slack) == []


async def test_a_slash_command_over_the_socket(slack_socket: SlackBot) -> None:
    fake = slack_socket.fake
    envelope = await fake.send_envelope(slash_command("a comet"), kind="slash_commands")
    await fake.wait_for("socket.ack", lambda call: call.params["envelope_id"] == envelope)
    await slack_socket.settle()
    [asked] = [m for m in fake.messages.values() if m.thread_ts is None]
    assert asked.text == "<@UALICE> asked: a comet"
    assert [u.thread_ts for u in fake.uploads] == [asked.ts]


async def test_socket_mode_mounts_no_unsigned_http_route(make_engine: EngineFactory) -> None:
    async with FakeSlack() as fake:
        adapter = SlackAdapter(
            engine=await make_engine(),
            settings=slack_settings(fake, socket_mode=True),
        )
        server = web.Application()
        adapter.mount(server)
        assert [route.resource for route in server.router.routes()] == []


async def test_a_refused_app_token_is_a_config_error(make_engine: EngineFactory) -> None:
    async with FakeSlack(app_token="xapp-the-real-one") as fake:
        settings = slack_settings(fake, socket_mode=True, slack_app_token="xapp-wrong")
        adapter = SlackAdapter(engine=await make_engine(), settings=settings)
        with pytest.raises(ConfigError, match="SLACK_APP_TOKEN") as caught:
            await adapter.start()
        assert "xapp-wrong" not in caught.value.user_message
        assert fake.called("socket.connect") == []


async def test_a_refused_bot_token_is_a_config_error(make_engine: EngineFactory) -> None:
    async with FakeSlack() as fake:
        settings = slack_settings(fake, slack_bot_token="xoxb-revoked")
        adapter = SlackAdapter(engine=await make_engine(), settings=settings)
        with pytest.raises(ConfigError, match="invalid_auth") as caught:
            await adapter.start()
        assert "xoxb-revoked" not in caught.value.user_message
        assert "xoxb-revoked" not in adapter.describe()


async def test_http_mode_needs_the_signing_secret(make_engine: EngineFactory) -> None:
    async with FakeSlack() as fake:
        settings = slack_settings(fake, slack_signing_secret=None)
        adapter = SlackAdapter(engine=await make_engine(), settings=settings)
        with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
            await adapter.start()
        assert fake.calls == []


async def test_describe_names_the_mode_and_identity_but_no_secret(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine()
    async with FakeSlack() as fake, running_slack(fake=fake, engine=engine) as slack:
        described = slack.adapter.describe()
        assert "HTTP" in described and "UBOT" in described and "T0001" in described
        for secret in (fake.bot_token, "test-signing-secret"):
            assert secret not in described
