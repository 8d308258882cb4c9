"""The composition root: `python -m bot [run|check|imagine ...]` wires the concrete classes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from adapters.cli import ImagineArgs, add_imagine_parser, make_parser, run_imagine
from bot.access import AccessPolicy
from bot.config import Settings, load_settings
from bot.core import Engine, EngineOptions, JobObserver
from bot.errors import BotError, ConfigError
from bot.gptproto import GptProtoClient, UpstreamObserver
from bot.limits import JobGate, UserLimits
from bot.logs import RedactSecrets, configure_logging, secret_values
from bot.metrics import Metrics
from bot.preflight import Finding, Role, RunPlan, offline_findings, plan_run, slack_over_http
from bot.probes import make_client, online_findings
from bot.retention import Retention
from bot.service import Adapter, Service
from bot.web import Health, WebServer
from storage.sqlite import SqliteStore

logger = logging.getLogger(__name__)


def _generator(settings: Settings, observer: UpstreamObserver | None = None) -> GptProtoClient:
    if settings.gptproto_api_key is None:
        raise ConfigError("GPTPROTO_API_KEY is not set: put the gptproto.com API key in it.")
    return GptProtoClient(
        base_url=str(settings.gptproto_base_url),
        api_key=settings.gptproto_api_key.get_secret_value(),
        auth_scheme=settings.gptproto_auth_scheme,
        api=settings.image_api,
        timeout=settings.upstream_timeout,
        max_attempts=settings.upstream_max_attempts,
        max_connections=settings.max_concurrent_jobs,
        observer=observer,
    )


@asynccontextmanager
async def _open(
    settings: Settings,
    *,
    terminal: bool,
    observer: JobObserver | None,
    upstream_observer: UpstreamObserver | None,
) -> AsyncIterator[tuple[Engine, SqliteStore]]:
    generator = _generator(settings, upstream_observer)
    store = SqliteStore(settings.database_path)
    try:
        await store.open()
        gate = JobGate(max_concurrent=settings.max_concurrent_jobs, max_queue=settings.max_queue)
        limits = UserLimits(
            per_minute=0 if terminal else settings.user_jobs_per_minute,
            per_day=0 if terminal else settings.user_jobs_per_day,
            counter=store,
        )
        access = None if terminal else AccessPolicy(
            allowed_channels=settings.allowed_channel_ids,
            allowed_users=settings.allowed_user_ids,
            blocked_users=settings.blocked_user_ids,
            admins=settings.admin_user_ids,
            allowed_roles=settings.allowed_role_ids,
        )  # fmt: skip
        options = EngineOptions(
            model=settings.image_model,
            api=settings.image_api,
            default_ratio=settings.default_aspect_ratio,
            history_turns=settings.history_turns,
        )
        engine = Engine(
            store=store,
            generator=generator,
            gate=gate,
            user_limits=limits,
            access=access,
            options=options,
            observer=observer,
        )
        yield engine, store
    finally:
        await generator.aclose()
        await store.close()


@asynccontextmanager
async def open_engine(
    settings: Settings,
    *,
    terminal: bool = False,
    observer: JobObserver | None = None,
    upstream_observer: UpstreamObserver | None = None,
) -> AsyncIterator[Engine]:
    """An engine on the configured store and upstream; closed on exit.

    The terminal is the operator's own: no per-user limits or access lists apply there.
    """
    async with _open(
        settings, terminal=terminal, observer=observer, upstream_observer=upstream_observer
    ) as (engine, _):
        yield engine


async def _imagine(settings: Settings, args: ImagineArgs) -> int:
    async with open_engine(settings, terminal=True) as engine:
        await engine.start()
        return await run_imagine(engine, args)


# -- run ----------------------------------------------------------------------------------


def _adapters(
    settings: Settings, plan: RunPlan, *, engine: Engine, web: WebServer
) -> dict[str, Adapter]:
    # Imported only when enabled: a Slack-only process never loads discord.py, and vice versa.
    adapters: dict[str, Adapter] = {}
    if plan.discord:
        from adapters.discord import DiscordAdapter

        adapters["discord"] = DiscordAdapter(engine=engine, settings=settings)
    if plan.slack:
        from adapters.slack import SlackAdapter

        slack = SlackAdapter(engine=engine, settings=settings)
        if slack_over_http(settings):
            slack.mount(web.app)
        adapters["slack"] = slack
    return adapters


async def _serve(settings: Settings, plan: RunPlan, role: Role) -> int:
    metrics = Metrics(CollectorRegistry())
    logger.info("starting (role %s): %s", role.value, ", ".join(plan.platforms))
    parts = _open(settings, terminal=False, observer=metrics, upstream_observer=metrics)
    async with parts as (engine, store):
        metrics.watch_gate(engine.gate)
        health = Health(store.ping)
        web = WebServer(health=health, metrics=metrics, host=settings.host, port=settings.port)
        retention = Retention(store, days=settings.retention_days)
        service = Service(
            engine=engine,
            adapters=_adapters(settings, plan, engine=engine, web=web),
            web=web,
            health=health,
            background=[retention.run],
            grace_seconds=settings.shutdown_grace_seconds,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, service.request_stop)
        try:
            await service.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    return 0


def _run(settings: Settings, role: Role) -> int:
    configure_logging(settings)
    plan = plan_run(settings, role=role)
    try:
        return asyncio.run(_serve(settings, plan, role))
    except BotError:
        raise
    except Exception:
        logger.exception("the bot stopped on an unexpected error")
        return 1


# -- check --------------------------------------------------------------------------------


async def _store_finding(settings: Settings) -> Finding:
    store = SqliteStore(settings.database_path)
    try:
        await store.open()
    except BotError as exc:
        return Finding("store", " ".join(exc.user_message.split()), exc.exit_code)
    try:
        answers = await store.ping()
    finally:
        await store.close()
    if not answers:
        return Finding("store", f"{settings.database_path} opened but does not answer", 3)
    return Finding("store", f"SQLite {settings.database_path}: opened, schema up to date")


async def _check(settings: Settings, *, online: bool) -> int:
    findings = offline_findings(settings)
    findings.append(await _store_finding(settings))
    if online:
        async with make_client() as http:
            findings.extend(await online_findings(settings, http=http))
    redactor = RedactSecrets(secret_values(settings))
    for finding in findings:
        print(redactor.redact(finding.line()))
    codes = [finding.exit_code for finding in findings if not finding.ok]
    if codes:
        print(f"the configuration cannot run yet (exit {min(codes)})")
        return min(codes)
    print("the configuration can run" + ("" if online else " (add --online to verify the keys)"))
    return 0


# -- entry --------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = make_parser()
    commands = parser.add_subparsers(dest="command", metavar="{run,check,imagine}")
    run = commands.add_parser("run", help="run every adapter whose token is set (the default)")
    run.add_argument(
        "--role", type=Role, choices=list(Role), default=Role.ALL,
        help="all: everything configured; worker: Discord gateway and Slack Socket Mode; "
        "web: Slack over HTTP (a Procfile's two process types never answer the same events)",
    )  # fmt: skip
    check = commands.add_parser("check", help="validate the settings and the store")
    check.add_argument(
        "--online", action="store_true", help="also verify the API key and tokens (one call each)"
    )
    add_imagine_parser(commands)
    return parser.parse_args(argv)


def _quiet_logging(settings: Settings) -> None:
    # The terminal prints its own one-line errors; retries and warnings would only repeat them.
    level = max(logging.ERROR, logging.getLevelName(settings.log_level))
    configure_logging(settings, level=level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bot`; returns the process exit code."""
    args = _parse(argv)
    redactor = RedactSecrets(())
    try:
        settings = load_settings()
        redactor = RedactSecrets(secret_values(settings))
        if args.command == "imagine":
            _quiet_logging(settings)
            return asyncio.run(_imagine(settings, ImagineArgs.from_namespace(args)))
        if args.command == "check":
            _quiet_logging(settings)
            return asyncio.run(_check(settings, online=args.online))
        return _run(settings, getattr(args, "role", Role.ALL))
    except BotError as exc:
        print(f"error: {redactor.redact(exc.user_message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
