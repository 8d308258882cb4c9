"""What a process will serve (`run --role`) and what the configuration lacks (`check`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.config import Settings, allowed_models, model_table
from bot.errors import BotError, ConfigError, InputError

NOTHING_CONFIGURED = """nothing to run: no platform is configured. Set (in the environment or .env):
  DISCORD_TOKEN            to serve Discord, and/or
  SLACK_BOT_TOKEN          to serve Slack, with SLACK_SIGNING_SECRET (Slack over HTTP on PORT)
                           or SLACK_APP_TOKEN (Socket Mode)
  GPTPROTO_API_KEY         the gptproto.com API key (always needed)
`python -m bot check` reports what is set and what is missing."""


# The one line `check` shows; its discord and slack lines already say which token to set.
NOTHING_TO_RUN = "nothing to run: set DISCORD_TOKEN and/or SLACK_BOT_TOKEN"


class Role(StrEnum):
    """Which connections a process serves; worker and web never overlap."""

    ALL = "all"  # everything configured, in one process
    WORKER = "worker"  # connections the bot opens: Discord gateway, Slack Socket Mode
    WEB = "web"  # deliveries to the bot's public URL: Slack Events over HTTP


class NothingToRun(InputError):
    """No adapter is configured for this process."""


@dataclass(frozen=True)
class RunPlan:
    """The adapters one process starts."""

    discord: bool
    slack: bool

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(name for name, on in (("discord", self.discord), ("slack", self.slack)) if on)


def slack_over_http(settings: Settings) -> bool:
    return settings.slack_enabled and settings.slack_app_token is None


def plan_run(settings: Settings, *, role: Role = Role.ALL) -> RunPlan:
    """The adapters this role runs, or the error that says what to set (exit 2, then 3)."""
    if not (settings.discord_enabled or settings.slack_enabled):
        raise NothingToRun(NOTHING_CONFIGURED)
    http = slack_over_http(settings)
    plan = RunPlan(
        discord=settings.discord_enabled and role is not Role.WEB,
        slack=settings.slack_enabled and (role is Role.ALL or (role is Role.WEB) == http),
    )
    if not plan.platforms:
        raise NothingToRun(_nothing_for(role))
    if settings.gptproto_api_key is None:
        raise ConfigError("GPTPROTO_API_KEY is not set: put the gptproto.com API key in it.")
    if plan.slack and http and settings.slack_signing_secret is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: Slack over HTTP needs it to verify Slack's "
            "requests (or set SLACK_APP_TOKEN to use Socket Mode instead)."
        )
    return plan


def _nothing_for(role: Role) -> str:
    if role is Role.WEB:
        return (
            "nothing for the web process: it serves Slack over HTTP only (SLACK_BOT_TOKEN and "
            "SLACK_SIGNING_SECRET, without SLACK_APP_TOKEN). Discord and Slack Socket Mode run "
            "in the worker process: scale web to 0."
        )
    return (
        "nothing for the worker process: it serves the Discord gateway and Slack Socket Mode. "
        "Slack over HTTP (no SLACK_APP_TOKEN) runs in the web process: scale worker to 0."
    )


@dataclass(frozen=True)
class Finding:
    """One line of `check`: a subject, what was found, and the exit code if it is a problem."""

    subject: str
    text: str
    exit_code: int = 0
    warning: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def line(self) -> str:
        mark = "ok  " if self.ok and not self.warning else ("warn" if self.ok else "FAIL")
        return f"{mark}  {self.subject}: {self.text}"


def failed(subject: str, error: BotError) -> Finding:
    return Finding(subject, " ".join(error.user_message.split()), error.exit_code or 1)


def offline_findings(settings: Settings) -> list[Finding]:
    """What the settings configure, platform by platform, without any network call."""
    findings = [_upstream(settings), _discord(settings), _slack(settings)]
    if not (settings.discord_enabled or settings.slack_enabled):
        findings.append(Finding("adapters", NOTHING_TO_RUN, 2))
    findings.append(_http(settings))
    findings.append(_rules(settings))
    return findings


def _upstream(settings: Settings) -> Finding:
    where = (
        f"base URL {settings.gptproto_base_url}, model {settings.image_model}, "
        f"api {settings.image_api.value}, auth {settings.gptproto_auth_scheme}"
    )
    if settings.gptproto_api_key is None:
        return Finding("upstream", f"GPTPROTO_API_KEY is not set; {where}", 3)
    try:
        models = model_table(settings)
        caps = models.get(settings.image_model)
        for choosable in allowed_models(settings):
            models.get(choosable)
    except BotError as exc:
        return failed("upstream", exc)
    if caps.retired_on is not None:
        return Finding(
            "upstream",
            f"key set; {where} (Google shut {caps.name} down on {caps.retired_on.isoformat()}: "
            f"it answers only while the gateway still routes it; its successor is "
            f"{caps.successor}; `check --online` tells whether it answers)",
            warning=True,
        )
    if not models.knows(settings.image_model):
        return Finding(
            "upstream",
            f"key set; {where} (model not in the table: the limits and prices of the "
            f"{caps.family} family are assumed; add it to MODELS_FILE to set its own)",
            warning=True,
        )
    return Finding("upstream", f"key set; {where}")


def _discord(settings: Settings) -> Finding:
    if not settings.discord_enabled:
        return Finding("discord", "off (set DISCORD_TOKEN to serve Discord)")
    if settings.discord_guild_ids:
        sync = "slash commands sync to guilds " + ", ".join(sorted(settings.discord_guild_ids))
    else:
        sync = "slash commands sync globally (may take up to an hour; DISCORD_GUILD_IDS is instant)"
    extra = f"; REST at {settings.discord_api_base_url}" if settings.discord_api_base_url else ""
    return Finding(
        "discord",
        f"token set; gateway (worker role); {sync}{extra}; thread replies need the Message "
        "Content intent switched on in the developer portal",
    )


def _slack(settings: Settings) -> Finding:
    if not settings.slack_enabled:
        if settings.slack_app_token or settings.slack_signing_secret:
            return Finding(
                "slack",
                "off: SLACK_BOT_TOKEN is not set, so the other Slack settings are unused",
                warning=True,
            )
        return Finding("slack", "off (set SLACK_BOT_TOKEN to serve Slack)")
    api = f"; Web API at {settings.slack_api_url}"
    if settings.slack_app_token is not None:
        return Finding("slack", f"bot token set; Socket Mode (app token set; worker role){api}")
    if settings.slack_signing_secret is None:
        return Finding(
            "slack",
            "bot token set; over HTTP, but SLACK_SIGNING_SECRET is not set (or set "
            "SLACK_APP_TOKEN for Socket Mode)",
            3,
        )
    return Finding(
        "slack",
        f"bot token set; over HTTP at POST /slack/events on port {settings.port} with the "
        f"signing secret set (web role){api}",
    )


def _http(settings: Settings) -> Finding:
    routes = "/healthz, /metrics" + (", /slack/events" if slack_over_http(settings) else "")
    return Finding("http", f"{settings.host}:{settings.port} serves {routes}")


def _rules(settings: Settings) -> Finding:
    lists = {
        "allowed channels": settings.allowed_channel_ids,
        "allowed users": settings.allowed_user_ids,
        "allowed roles": settings.allowed_role_ids,
        "blocked users": settings.blocked_user_ids,
        "admins": settings.admin_user_ids,
    }
    access = ", ".join(f"{len(ids)} {name}" for name, ids in lists.items() if ids) or "open to all"
    keep = f"{settings.retention_days} days" if settings.retention_days else "forever"
    return Finding(
        "limits",
        f"{settings.max_concurrent_jobs} jobs at once, queue {settings.max_queue}, per user "
        f"{settings.user_jobs_per_minute}/min and {settings.user_jobs_per_day}/day (0 = off); "
        f"access: {access}; history kept {keep}",
    )
