"""Settings from the environment and `.env`, validated once; secrets stay SecretStr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.upstream import RATIOS, Api

IdList = Annotated[frozenset[str], NoDecode]


def _split_ids(value: Any) -> Any:
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Every setting the README documents (and the operator's extras), in one place."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    gptproto_api_key: SecretStr | None = None
    gptproto_base_url: AnyHttpUrl = AnyHttpUrl("https://gptproto.com")
    gptproto_auth_scheme: Literal["bearer", "raw"] = "bearer"
    image_model: str = Field("gemini-2.5-flash-image", min_length=1)
    image_api: Api = Api.GEMINI
    default_aspect_ratio: str | None = None
    upstream_timeout: float = Field(180.0, gt=0)
    upstream_max_attempts: int = Field(4, ge=1, le=10)
    # A 4K PNG is about 34 MB as base64 JSON: twice that, and nothing legitimate is refused.
    upstream_max_answer_bytes: int = Field(64 * 1024 * 1024, ge=1_000_000)
    history_turns: int = Field(6, ge=0, le=50)
    database_url: str = "sqlite:///data/bot.db"

    discord_token: SecretStr | None = None
    discord_api_base_url: AnyHttpUrl | None = None
    discord_gateway_url: str | None = None
    discord_guild_ids: IdList = frozenset()

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")

    port: int = Field(3000, ge=0, le=65535)
    host: str = "0.0.0.0"
    http_max_connections: int | None = Field(None, ge=1)  # unset: from the open-file limit
    http_header_timeout: float = Field(10.0, gt=0)
    http_body_timeout: float = Field(10.0, gt=0)
    # Above the 60 s idle timeout of common load balancers, which would otherwise see 502s.
    http_keepalive_timeout: float = Field(75.0, gt=0)
    http_max_body_bytes: int = Field(1024 * 1024, ge=1024)

    max_concurrent_jobs: int = Field(4, ge=1)
    max_queue: int = Field(50, ge=0)
    user_jobs_per_minute: int = Field(5, ge=0)
    user_jobs_per_day: int = Field(100, ge=0)
    max_download_mb: float = Field(25.0, gt=0)

    allowed_channel_ids: IdList = frozenset()
    allowed_user_ids: IdList = frozenset()
    blocked_user_ids: IdList = frozenset()
    admin_user_ids: IdList = frozenset()
    allowed_role_ids: IdList = frozenset()
    retention_days: int = Field(30, ge=0)
    shutdown_grace_seconds: float = Field(30.0, ge=0)  # how long jobs may finish at SIGTERM

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    log_max_chars: int = Field(8192, ge=200)

    @field_validator(
        "discord_guild_ids",
        "allowed_channel_ids",
        "allowed_user_ids",
        "blocked_user_ids",
        "admin_user_ids",
        "allowed_role_ids",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_ids(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "default_aspect_ratio", "discord_gateway_url", "http_max_connections", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("default_aspect_ratio")
    @classmethod
    def _known_ratio(cls, value: str | None) -> str | None:
        if value is not None and value not in RATIOS:
            raise ValueError(f"unknown aspect ratio {value!r}; choose one of {', '.join(RATIOS)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _sqlite_url(cls, value: str) -> str:
        if not value.startswith("sqlite:///") or value == "sqlite:///":
            raise ValueError("expected sqlite:///relative/path.db or sqlite:////absolute/path.db")
        return value

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("expected a ws:// or wss:// URL")
        return value

    @model_validator(mode="after")
    def _blank_secrets_are_unset(self) -> Settings:
        for name in (
            "gptproto_api_key",
            "discord_token",
            "slack_bot_token",
            "slack_app_token",
            "slack_signing_secret",
        ):
            secret = getattr(self, name)
            if secret is not None and not secret.get_secret_value().strip():
                object.__setattr__(self, name, None)
        return self

    @property
    def database_path(self) -> Path:
        """The SQLite file: `sqlite:///rel.db` is relative, `sqlite:////abs.db` absolute."""
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings once; a bad value becomes one ConfigError naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"][:1]).upper() or "settings"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise ConfigError("Invalid setting " + "; ".join(problems)) from None
