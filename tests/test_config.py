"""Settings: the defaults the README lists, one clear message per bad value, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.upstream import Api

SETTING_NAMES = [
    "GPTPROTO_API_KEY", "GPTPROTO_BASE_URL", "GPTPROTO_AUTH_SCHEME", "IMAGE_MODEL", "IMAGE_API",
    "UPSTREAM_TIMEOUT", "HISTORY_TURNS", "DATABASE_URL", "DISCORD_TOKEN", "DISCORD_API_BASE_URL",
    "DISCORD_GATEWAY_URL", "DISCORD_GUILD_IDS", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET", "SLACK_API_URL", "PORT", "HOST", "MAX_CONCURRENT_JOBS", "MAX_QUEUE",
    "USER_JOBS_PER_MINUTE", "USER_JOBS_PER_DAY", "LOG_LEVEL", "DEFAULT_ASPECT_RATIO",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_the_design() -> None:
    settings = load_settings()
    assert settings.gptproto_api_key is None
    assert str(settings.gptproto_base_url) == "https://gptproto.com/"
    assert settings.gptproto_auth_scheme == "bearer"
    assert settings.image_model == "gemini-2.5-flash-image"
    assert settings.image_api is Api.GEMINI
    assert settings.upstream_timeout == 180
    assert settings.history_turns == 6
    assert settings.database_path == Path("data/bot.db")
    assert str(settings.slack_api_url) == "https://slack.com/api/"
    assert (settings.port, settings.host) == (3000, "0.0.0.0")
    assert (settings.max_concurrent_jobs, settings.max_queue) == (4, 50)
    assert (settings.user_jobs_per_minute, settings.user_jobs_per_day) == (5, 100)
    assert settings.log_level == "INFO"


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IMAGE_API=openai-chat\nDISCORD_GUILD_IDS=12, 34\n")
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/bot/state.db")
    monkeypatch.setenv("log_level", "debug")
    settings = load_settings()
    assert settings.image_api is Api.OPENAI_CHAT
    assert settings.discord_guild_ids == frozenset({"12", "34"})
    assert settings.database_path == Path("/srv/bot/state.db")
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("DEFAULT_ASPECT_RATIO", "7:3", "unknown aspect ratio"),
        ("GPTPROTO_BASE_URL", "not a url", "URL"),
        ("SLACK_API_URL", "ftp://x", "URL"),
        ("MAX_QUEUE", "-1", "greater than or equal to 0"),
        ("USER_JOBS_PER_DAY", "-5", "greater than or equal to 0"),
        ("MAX_CONCURRENT_JOBS", "0", "greater than or equal to 1"),
        ("IMAGE_API", "soap", "gemini"),
        ("GPTPROTO_AUTH_SCHEME", "basic", "bearer"),
        ("DATABASE_URL", "mysql://db/bot", "sqlite:///"),
        ("DISCORD_GATEWAY_URL", "http://gateway", "ws://"),
        ("PORT", "seventy", "integer"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as bad:
        load_settings()
    message = bad.value.user_message
    assert message.startswith(f"Invalid setting {name}:")
    assert said in message
    assert "\n" not in message


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "GPTPROTO_API_KEY": "sk-very-secret-key",
        "DISCORD_TOKEN": "discord-secret-token",
        "SLACK_BOT_TOKEN": "xoxb-secret",
        "SLACK_APP_TOKEN": "xapp-secret",
        "SLACK_SIGNING_SECRET": "signing-secret",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAX_QUEUE", "-3")
    with pytest.raises(ConfigError) as bad:
        load_settings()
    monkeypatch.delenv("MAX_QUEUE")
    settings = load_settings()
    shown = repr(settings) + str(settings) + bad.value.user_message
    assert not [value for value in secrets.values() if value in shown]
    assert settings.gptproto_api_key is not None
    assert settings.gptproto_api_key.get_secret_value() == "sk-very-secret-key"


def test_blank_tokens_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "  ")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    settings = load_settings()
    assert not settings.discord_enabled and not settings.slack_enabled
