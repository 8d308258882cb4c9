"""`python -m bot run` as an operator runs it: a real subprocess against the local fakes."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp

from tests.fakes.discord import FakeDiscord
from tests.fakes.gptproto import Outcome
from tests.fakes.slack import EventSender, event_callback, message_event
from tests.fakes.slack.web_api import Call
from tests.support.cli import (
    API_KEY,
    SIGNING_SECRET,
    BotProcess,
    bot_running,
    fakes,
    online_settings,
    run_bot,
)

# -- what `run` refuses -----------------------------------------------------------------


def test_run_with_nothing_configured_names_the_variables_and_exits_2(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "run", GPTPROTO_API_KEY=API_KEY)
    assert result.returncode == 2, result.stderr
    for name in (
        "DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN",
        "GPTPROTO_API_KEY",
    ):  # fmt: skip
        assert name in result.stderr
    assert API_KEY not in result.stderr + result.stdout
    assert run_bot(tmp_path).returncode == 2  # `python -m bot` alone is `run`


def test_run_without_the_api_key_exits_3(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "run", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="signing")
    assert result.returncode == 3
    assert "GPTPROTO_API_KEY is not set" in result.stderr


def test_slack_over_http_without_a_signing_secret_exits_3(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "run", SLACK_BOT_TOKEN="xoxb-1", GPTPROTO_API_KEY=API_KEY)
    assert result.returncode == 3
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr


def test_the_web_role_never_serves_discord(tmp_path: Path) -> None:
    result = run_bot(
        tmp_path, "run", "--role", "web", DISCORD_TOKEN="discord-token", GPTPROTO_API_KEY=API_KEY
    )
    assert result.returncode == 2
    assert "nothing for the web process" in result.stderr


def test_the_worker_role_never_serves_slack_over_http(tmp_path: Path) -> None:
    settings = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "GPTPROTO_API_KEY": "k"}
    result = run_bot(tmp_path, "run", "--role", "worker", **settings)
    assert result.returncode == 2
    assert "nothing for the worker process" in result.stderr


# -- run, end to end ----------------------------------------------------------------------


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def _healthy(session: aiohttp.ClientSession, url: str, bot: BotProcess) -> None:
    async with asyncio.timeout(30):
        while (await _get(session, url + "/healthz"))[0] != 200:
            assert bot.process.returncode is None, bot.output
            await asyncio.sleep(0.05)


async def _mention(sender: EventSender, text: str) -> None:
    status, _ = await sender.event(
        event_callback(message_event(f"<@UBOT> {text}", kind="app_mention"))
    )
    assert status == 200


async def test_run_serves_slack_over_http_and_drains_on_sigterm(tmp_path: Path) -> None:
    async with fakes() as (gpt, slack), aiohttp.ClientSession() as session:
        settings = {
            "GPTPROTO_API_KEY": API_KEY,
            "GPTPROTO_BASE_URL": gpt.url,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "PORT": "0",
            "LOG_LEVEL": "DEBUG",  # the most that could ever leak into a log
            "SHUTDOWN_GRACE_SECONDS": "20",
        }
        async with bot_running(tmp_path, settings) as bot:
            url = await bot.url()
            await _healthy(session, url, bot)
            async with EventSender(url + "/slack/events", secret=SIGNING_SECRET) as sender:
                await _mention(sender, "a banana on the moon")
                await slack.wait_for("files.completeUploadExternal", within=20)
                # The job ends (and is counted) once its result is out: the check mark says so.
                await slack.wait_for("reactions.add", _done, within=20)
                status, metrics = await _get(session, url + "/metrics")
                assert status == 200
                assert 'bot_jobs_total{outcome="ok",platform="slack"} 1.0' in metrics
                assert 'bot_images_total{platform="slack"} 1.0' in metrics

                # An error path whose exception text carries the bot token.
                slack.fail("chat.postMessage", f"token_revoked:{slack.bot_token}")
                await _mention(sender, "a second banana")
                await slack.wait_for("files.completeUploadExternal", count=2, within=20)
                await slack.wait_for("chat.postMessage", count=2, within=20)
                del slack.failures["chat.postMessage"]

                gpt.queue(Outcome.slow(2.0))
                await _mention(sender, "a slow banana")
                await gpt.wait_for_requests(3, within=20)
                bot.process.send_signal(signal.SIGTERM)
                assert await bot.exit_code(within=20) == 0, bot.output
        third = gpt.generations[2].produced
        assert third and third[0] in [upload.data for upload in slack.uploads]
    output = bot.output
    assert "slack: Slack over HTTP at POST /slack/events" in output
    assert "INFO bot.ops.service: stopped" in output
    assert "[redacted]" in output  # the failing post was logged, with the token hidden
    for secret in (API_KEY, SIGNING_SECRET, slack.bot_token):
        assert secret not in output


async def test_the_worker_serves_discord_and_slack_socket_mode_in_one_process(
    tmp_path: Path,
) -> None:
    async with (
        fakes() as (gpt, slack),
        FakeDiscord() as discord,
        aiohttp.ClientSession() as session,
    ):
        settings = online_settings(gpt, slack, discord) | {
            "DISCORD_GATEWAY_URL": discord.gateway_url,
            "PORT": "0",
            "LOG_FORMAT": "json",
        }
        async with bot_running(tmp_path, settings, "--role", "worker") as bot:
            url = await bot.url()
            await _healthy(session, url, bot)
            await slack.wait_for("socket.connect")
            event = message_event("<@UBOT> a banana over the socket", kind="app_mention")
            await slack.send_envelope(event_callback(event))
            await slack.wait_for("files.completeUploadExternal", within=20)
            bot.process.send_signal(signal.SIGINT)
            assert await bot.exit_code(within=20) == 0, bot.output
        assert [upload.data for upload in slack.uploads] == gpt.produced
    records = [json.loads(line) for line in bot.lines]
    messages = [record["message"] for record in records if record["logger"] == "bot.ops.service"]
    assert any(message.startswith("discord: ") for message in messages)
    assert any(message.startswith("slack: Slack over Socket Mode") for message in messages)
    assert messages[-1] == "stopped"
    assert "POST /slack/events" not in bot.output  # no unsigned route in Socket Mode
    for secret in (API_KEY, slack.bot_token, slack.app_token, discord.token):
        assert secret not in bot.output


def _done(call: Call) -> bool:
    return call.params.get("name") == "white_check_mark"
