"""`python -m bot check [--online]`: what is configured, what is missing, which keys work."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.config import Settings
from bot.ops import Finding, make_client, online_findings
from tests.fakes.discord import FakeDiscord
from tests.fakes.local_server import serve_locally
from tests.support.cli import (
    API_KEY,
    SIGNING_SECRET,
    fakes,
    online_settings,
    run_bot,
    run_bot_async,
)


def test_check_reports_what_is_configured_without_printing_secrets(tmp_path: Path) -> None:
    settings = {
        "SLACK_BOT_TOKEN": "xoxb-check-secret",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "DISCORD_TOKEN": "discord-check-secret",
        "DISCORD_GUILD_IDS": "111,222",
        "GPTPROTO_API_KEY": API_KEY,
    }
    result = run_bot(tmp_path, "check", **settings)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "warn  upstream: key set; base URL https://gptproto.com/" in out
    assert "model gemini-2.5-flash-image, api gemini" in out
    # The default model is one Google has shut down: check says so, and names its successor.
    assert "shut gemini-2.5-flash-image down on 2026-10-02" in out
    assert "its successor is gemini-3.1-flash-image" in out
    assert (
        "discord: token set; gateway (worker role); slash commands sync to guilds 111, 222" in out
    )
    assert "slack: bot token set; over HTTP at POST /slack/events" in out
    assert f"store: SQLite {tmp_path}/bot.db: opened, schema up to date" in out
    assert (tmp_path / "bot.db").exists()
    assert out.rstrip().endswith("(add --online to verify the keys)")
    for secret in settings.values():
        if secret not in ("111,222",):
            assert secret not in out + result.stderr


def test_check_names_a_bad_setting_and_exits_3(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "check", PORT="eighty", GPTPROTO_API_KEY=API_KEY)
    assert result.returncode == 3
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: Invalid setting PORT:")


def test_check_without_the_key_or_an_adapter_fails(tmp_path: Path) -> None:
    missing_key = run_bot(tmp_path, "check", DISCORD_TOKEN="d")
    assert missing_key.returncode == 3
    assert "FAIL  upstream: GPTPROTO_API_KEY is not set" in missing_key.stdout
    no_adapter = run_bot(tmp_path, "check", GPTPROTO_API_KEY=API_KEY)
    assert no_adapter.returncode == 2
    assert (
        "FAIL  adapters: nothing to run: set DISCORD_TOKEN and/or SLACK_BOT_TOKEN"
        in no_adapter.stdout.splitlines()
    )
    socket_only = run_bot(
        tmp_path, "check", SLACK_BOT_TOKEN="x", SLACK_APP_TOKEN="xapp", GPTPROTO_API_KEY=API_KEY
    )
    assert socket_only.returncode == 0
    assert "Socket Mode (app token set; worker role)" in socket_only.stdout


def test_check_reports_a_store_it_cannot_open(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = run_bot(
        tmp_path, "check", DISCORD_TOKEN="d", GPTPROTO_API_KEY=API_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path}/file/bot.db",
    )  # fmt: skip
    assert result.returncode == 3
    assert "FAIL  store: Cannot open the database" in result.stdout


async def test_check_online_verifies_each_credential_with_one_call(tmp_path: Path) -> None:
    async with fakes() as (gpt, slack), FakeDiscord() as discord:
        settings = online_settings(gpt, slack, discord)
        code, out = await run_bot_async(tmp_path, "check", "--online", **settings)
        assert code == 0, out
        assert "ok    upstream online: API key accepted" in out
        assert "ok    discord online: token accepted: bot " in out
        assert "ok    slack online: bot token accepted: workspace" in out
        assert "ok    slack online: app token accepted" in out
        assert [call.method for call in slack.calls] == ["auth.test", "apps.connections.open"]
        assert len(discord.of("users_me")) == 1 and len(gpt.requests) == 1
        for secret in settings.values():
            if "127.0.0.1" not in secret:
                assert secret not in out


async def test_check_online_fails_on_refused_credentials(tmp_path: Path) -> None:
    async with fakes(api_key="another-key") as (gpt, slack), FakeDiscord() as discord:
        settings = online_settings(gpt, slack, discord)
        settings |= {"DISCORD_TOKEN": "wrong-discord", "SLACK_APP_TOKEN": "xapp-wrong"}
        code, out = await run_bot_async(tmp_path, "check", "--online", **settings)
    assert code == 3, out
    assert "FAIL  upstream online: The image service refused the bot's API key" in out
    assert "FAIL  discord online: DISCORD_TOKEN was refused (HTTP 401)" in out
    assert "FAIL  slack online: SLACK_APP_TOKEN was refused by apps.connections.open" in out
    assert "ok    slack online: bot token accepted" in out


# -- the upstream probe, answer by answer ---------------------------------------------------


class _Gateway:
    """Answers every request with one scripted status and JSON body; records what came."""

    def __init__(
        self, status: int, body: dict[str, Any], answers: dict[str, int] | None = None
    ) -> None:
        self.status, self.body = status, body
        self.answers = answers or {}  # a status by model, for the models named here
        self.seen: list[tuple[str, str | None, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("Authorization"), await request.json()))
        for model, status in self.answers.items():
            if f"/models/{model}:" in request.path:
                return web.json_response(
                    _google_error(status, "INVALID_ARGUMENT", "empty"), status=status
                )
        return web.json_response(self.body, status=self.status)


@asynccontextmanager
async def _gateway(
    status: int, body: dict[str, Any], answers: dict[str, int] | None = None
) -> AsyncIterator[tuple[_Gateway, str]]:
    gateway = _Gateway(status, body, answers)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    runner, port = await serve_locally(app, access_log=None)
    try:
        yield gateway, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _google_error(code: int, status: str, message: str, reason: str = "") -> dict[str, Any]:
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


async def _probe(base_url: str, **settings: str) -> Finding:
    values: dict[str, Any] = {"gptproto_api_key": API_KEY, "gptproto_base_url": base_url}
    configured = Settings(_env_file=None, **(values | settings))  # type: ignore[call-arg]
    async with make_client() as http:
        [finding] = await online_findings(configured, http=http)
    return finding


@pytest.mark.parametrize(
    ("status", "body", "code", "says"),
    [
        (400, _google_error(400, "INVALID_ARGUMENT", "contents is not specified"), 0, "accepted"),
        (400, _google_error(400, "INVALID_ARGUMENT", "API key not valid.", "API_KEY_INVALID"), 3,
         "refused the bot's API key"),
        (401, {"error": {"message": "Invalid signature", "type": "401"}}, 3, "refused"),
        (403, {"error": {"message": "Insufficient balance", "type": "403"}}, 3, "top it up"),
        (404, _google_error(404, "NOT_FOUND", "models/x is not found"), 3, "has been retired"),
        (429, _google_error(429, "RESOURCE_EXHAUSTED", "quota"), 0, "rate limiting"),
        (503, _google_error(503, "UNAVAILABLE", "The model is overloaded."), 5, "unavailable"),
    ],
)  # fmt: skip
async def test_the_upstream_probe_reads_each_answer(
    status: int, body: dict[str, Any], code: int, says: str
) -> None:
    async with _gateway(status, body) as (gateway, url):
        finding = await _probe(url, gptproto_auth_scheme="raw")
    assert finding.exit_code == code
    assert says in finding.text
    # A model that is gone sends the probe on to the current models, to name one that answers.
    (path, authorization, sent), *others = gateway.seen
    assert len(others) == (3 if status == 404 else 0)
    assert path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert authorization == API_KEY and sent == {"contents": []}
    assert API_KEY not in finding.line()


async def test_a_default_model_that_is_gone_is_reported_with_one_that_answers() -> None:
    gone = _google_error(404, "NOT_FOUND", "models/gemini-2.5-flash-image is not found")
    async with _gateway(404, gone, {"gemini-3-pro-image": 400}) as (gateway, url):
        finding = await _probe(url)
    assert finding.exit_code == 3
    assert "'gemini-2.5-flash-image' has been retired" in finding.text
    assert finding.text.endswith(
        "gemini-3-pro-image does answer: set IMAGE_MODEL=gemini-3-pro-image."
    )
    assert [path.split("/")[-1] for path, _, _ in gateway.seen] == [
        "gemini-2.5-flash-image:generateContent",
        "gemini-3.1-flash-image:generateContent",
        "gemini-3-pro-image:generateContent",
    ]


async def test_the_probe_uses_the_configured_endpoint_family() -> None:
    async with _gateway(400, _google_error(400, "INVALID_ARGUMENT", "empty")) as (gateway, url):
        finding = await _probe(url, image_api="openai-images", image_model="my-model")
    assert finding.ok
    assert gateway.seen == [
        ("/v1/images/generations", f"Bearer {API_KEY}", {"model": "my-model", "prompt": ""})
    ]


async def test_an_unreachable_service_is_exit_5() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    finding = await _probe(f"http://127.0.0.1:{closed_port}")
    assert finding.exit_code == 5 and "cannot reach" in finding.text
