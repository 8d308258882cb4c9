"""Settings from the environment and `.env`, validated once; secrets stay SecretStr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.upstream import BUILTIN, WIDE_RATIOS, Api, ModelTable

IdList = Annotated[frozenset[str], NoDecode]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


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
    # The models users may choose (Discord's model option, --model); empty: IMAGE_MODEL and
    # every current model of the table.
    image_models: Annotated[tuple[str, ...], NoDecode] = ()
    models_file: Path | None = None  # TOML or JSON rows that add or override models
    # "model=USD" or "model:size=USD", comma separated: prices the cost figures use instead.
    image_prices: Annotated[dict[tuple[str, str | None], float], NoDecode] = Field(
        default_factory=dict
    )
    default_aspect_ratio: str | None = None
    upstream_timeout: float = Field(180.0, gt=0)
    upstream_max_attempts: int = Field(4, ge=1, le=10)
    # A 4K PNG is about 34 MB as base64 JSON: twice that, and nothing legitimate is refused.
    upstream_max_answer_bytes: int = Field(64 * 1024 * 1024, ge=1_000_000)
    # aiohttp reads a large answer with under half httpcore's CPU; httpx is the way back.
    upstream_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    history_turns: int = Field(6, ge=0, le=50)
    # A pending job, an event being answered and a thread's turn are held this long without a
    # renewal before another process sharing the database takes them over.
    job_lease_seconds: float = Field(30.0, ge=3.0, le=600.0)
    # repr=False: a PostgreSQL URL may carry the database's password.
    database_url: str = Field("sqlite:///data/bot.db", repr=False)

    discord_token: SecretStr | None = None
    discord_api_base_url: AnyHttpUrl | None = None
    discord_gateway_url: str | None = None
    discord_guild_ids: IdList = frozenset()
    # Discord serves each gateway shard to one connection: the processes sharing the database
    # split these between them, one lease per shard.
    discord_shard_count: int = Field(1, ge=1, le=4096)
    discord_shard_ids: Annotated[frozenset[int], NoDecode] = frozenset()  # empty: every shard

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
    # Where users reach this server (https://bot.example.com): results over a platform's
    # upload limit get a signed link to their exact bytes, valid for LINK_TTL_HOURS.
    public_url: AnyHttpUrl | None = None
    link_ttl_hours: float = Field(72.0, gt=0, le=24 * 365)
    link_secret: SecretStr | None = None  # signs the links; unset: derived from the API key

    max_concurrent_jobs: int = Field(4, ge=1)
    max_queue: int = Field(50, ge=0)
    user_jobs_per_minute: int = Field(5, ge=0)
    user_jobs_per_day: int = Field(100, ge=0)
    # Monthly cost budgets in USD (0 = none); admins set per-user, per-role and per-workspace
    # budgets at run time, which take precedence.
    user_monthly_budget_usd: float = Field(0.0, ge=0)
    workspace_monthly_budget_usd: float = Field(0.0, ge=0)
    max_download_mb: float = Field(25.0, gt=0)
    image_workers: int = Field(0, ge=0)  # processes for image work; 0: the cores minus one

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

    @field_validator("image_models", mode="before")
    @classmethod
    def _model_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        return value

    @field_validator("image_prices", mode="before")
    @classmethod
    def _price_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        prices: dict[tuple[str, str | None], float] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, _, usd = item.partition("=")
            model, _, size = name.strip().partition(":")
            try:
                price = float(usd)
            except ValueError:
                raise ValueError(f"{item!r}: expected model=USD or model:size=USD") from None
            if not model or price < 0:
                raise ValueError(f"{item!r}: expected model=USD or model:size=USD")
            prices[(model, size.strip() or None)] = price
        return prices

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: Any) -> Any:
        return _split_ids(value)

    @field_validator("discord_shard_ids")
    @classmethod
    def _shards_in_range(cls, value: frozenset[int], info: ValidationInfo) -> frozenset[int]:
        count = info.data.get("discord_shard_count", 1)
        wrong = sorted(shard for shard in value if not 0 <= shard < count)
        if wrong:
            raise ValueError(f"shards {wrong} are not in 0..{count - 1} (DISCORD_SHARD_COUNT)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "default_aspect_ratio",
        "discord_gateway_url",
        "http_max_connections",
        "models_file",
        "public_url",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("default_aspect_ratio")
    @classmethod
    def _known_ratio(cls, value: str | None) -> str | None:
        if value is not None and value not in WIDE_RATIOS:
            raise ValueError(
                f"unknown aspect ratio {value!r}; choose one of {', '.join(WIDE_RATIOS)}"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        sqlite = value.startswith("sqlite:///") and value != "sqlite:///"
        postgres = value.startswith(POSTGRES_SCHEMES) and value not in POSTGRES_SCHEMES
        if not (sqlite or postgres):
            # Never the value itself: it may carry a password.
            raise ValueError(
                "expected sqlite:///relative/path.db, sqlite:////absolute/path.db or "
                "postgresql://user:password@host:port/database"
            )
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
            "link_secret",
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
    def database_is_postgres(self) -> bool:
        """DATABASE_URL names a PostgreSQL database (shared by processes) rather than a file."""
        return self.database_url.startswith(POSTGRES_SCHEMES)

    @property
    def discord_shards(self) -> tuple[int, ...]:
        """The shards this process may run: DISCORD_SHARD_IDS, else all of them."""
        return tuple(sorted(self.discord_shard_ids or range(self.discord_shard_count)))

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


def model_table(settings: Settings) -> ModelTable:
    """The built-in model table with MODELS_FILE's rows and IMAGE_PRICES applied."""
    table = BUILTIN if settings.models_file is None else BUILTIN.with_file(settings.models_file)
    return table.with_prices(settings.image_prices) if settings.image_prices else table


def allowed_models(settings: Settings) -> tuple[str, ...]:
    """IMAGE_MODELS with the default model first; empty when no allow-list is set."""
    if not settings.image_models:
        return ()
    return tuple(dict.fromkeys((settings.image_model, *settings.image_models)))
