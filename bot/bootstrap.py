"""The composition root: the one module that builds concrete classes and wires them together.

Everything else receives its collaborators through its constructor. A test overrides any part
by keyword (`open_engine(settings, store=MemoryStore(), generator=fake)`), the way
cosmicpython's bootstrap does; the command line (`bot/__main__.py`) only calls `run`, `check`
and `imagine` here.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from adapters.cli import ImagineArgs, run_imagine
from bot.config import Settings
from bot.engine import AccessPolicy, Engine, EngineOptions, JobGate, JobObserver, UserLimits
from bot.errors import BotError, ConfigError
from bot.images import ImageWorkers
from bot.ops import (
    Finding,
    Health,
    RedactSecrets,
    Retention,
    Role,
    RunPlan,
    UpstreamTracker,
    configure_logging,
    make_client,
    offline_findings,
    online_findings,
    plan_run,
    secret_values,
    slack_over_http,
)
from bot.upstream import GptProtoClient, ImageGenerator, UpstreamObserver
from storage.base import Store
from storage.sqlite import SqliteStore

if TYPE_CHECKING:
    # The server side (aiohttp's server, prometheus_client) is imported where a server is
    # built, so the terminal's `imagine` and `check` start without it.
    from bot.ops import Adapter, Metrics, Service, WebServer

logger = logging.getLogger(__name__)


def build_store(settings: Settings) -> Store:
    """The store DATABASE_URL names, not yet opened."""
    if settings.database_is_postgres:
        # Imported here: a process on SQLite (the terminal above all) never loads asyncpg.
        from storage.postgres import PostgresStore

        return PostgresStore(settings.database_url, max_connections=_pool_size(settings))
    return SqliteStore(settings.database_path)


def _pool_size(settings: Settings) -> int:
    """Connections for the jobs in flight, and a few for events, health and retention besides."""
    return settings.max_concurrent_jobs + 4


def describe_database(settings: Settings) -> str:
    """The database DATABASE_URL names, as a message may show it: never with a password."""
    if settings.database_is_postgres:
        from storage.postgres_connection import describe

        return f"PostgreSQL {describe(settings.database_url)}"
    return f"SQLite {settings.database_path}"


def build_generator(
    settings: Settings, *, observer: UpstreamObserver | None = None
) -> GptProtoClient:
    """The gptproto client, configured from the settings."""
    if settings.gptproto_api_key is None:
        raise ConfigError("GPTPROTO_API_KEY is not set: put the gptproto.com API key in it.")
    return GptProtoClient(
        base_url=str(settings.gptproto_base_url),
        api_key=settings.gptproto_api_key.get_secret_value(),
        auth_scheme=settings.gptproto_auth_scheme,
        api=settings.image_api,
        timeout=settings.upstream_timeout,
        max_attempts=settings.upstream_max_attempts,
        max_answer_bytes=settings.upstream_max_answer_bytes,
        transport=settings.upstream_transport,
        max_connections=settings.max_concurrent_jobs,
        observer=observer,
    )


def build_engine(
    settings: Settings,
    *,
    store: Store,
    generator: ImageGenerator,
    terminal: bool = False,
    observer: JobObserver | None = None,
    images: ImageWorkers | None = None,
) -> Engine:
    """The engine over a store and a generator; the terminal runs without user limits."""
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
    return Engine(
        store=store,
        generator=generator,
        gate=JobGate(max_concurrent=settings.max_concurrent_jobs, max_queue=settings.max_queue),
        user_limits=limits,
        access=access,
        options=EngineOptions(
            model=settings.image_model,
            api=settings.image_api,
            default_ratio=settings.default_aspect_ratio,
            history_turns=settings.history_turns,
            lease_seconds=settings.job_lease_seconds,
        ),
        observer=observer,
        images=images,
    )


def build_image_workers(settings: Settings) -> ImageWorkers:
    """The process's one pool for image work, shared by every job; no process starts yet."""
    return ImageWorkers(settings.image_workers)


@asynccontextmanager
async def open_engine(
    settings: Settings,
    *,
    terminal: bool = False,
    store: Store | None = None,
    generator: ImageGenerator | None = None,
    observer: JobObserver | None = None,
    upstream_observer: UpstreamObserver | None = None,
    images: ImageWorkers | None = None,
) -> AsyncIterator[Engine]:
    """An engine on an open store and a generator, closed on exit.

    A store, generator or image workers passed in are used as they are and left to their owner
    to close; the ones built here are opened and closed here. The terminal is the operator's
    own: no per-user limits or access lists apply there, and its one job converts images in a
    thread rather than wait for a worker process to start.
    """
    async with AsyncExitStack() as owned:
        if generator is None:
            built = build_generator(settings, observer=upstream_observer)
            owned.push_async_callback(built.aclose)
            generator = built
        if store is None:
            store = build_store(settings)
            owned.push_async_callback(store.close)
            await store.open()
        if images is None and not terminal:
            images = build_image_workers(settings)  # its workers start on first use
            owned.push_async_callback(images.aclose)
        yield build_engine(
            settings,
            store=store,
            generator=generator,
            terminal=terminal,
            observer=observer,
            images=images,
        )


def build_adapters(
    settings: Settings, plan: RunPlan, *, engine: Engine, web: WebServer
) -> dict[str, Adapter]:
    """The platform adapters the plan enables; Slack over HTTP is mounted on the web server."""
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


def build_service(
    settings: Settings,
    *,
    engine: Engine,
    store: Store,
    metrics: Metrics,
    adapters: Mapping[str, Adapter] | None = None,
    plan: RunPlan | None = None,
) -> Service:
    """The service: engine, adapters, web server, health and retention under one lifecycle."""
    from bot.ops import Service, WebServer

    metrics.watch_gate(engine.gate)
    upstream = UpstreamTracker()
    metrics.watch_upstream(upstream)
    health = Health(store.ping, writable=store.probe_write, upstream=upstream)
    web = WebServer(
        health=health,
        metrics=metrics,
        host=settings.host,
        port=settings.port,
        max_connections=settings.http_max_connections,
        header_timeout=settings.http_header_timeout,
        body_timeout=settings.http_body_timeout,
        keepalive_timeout=settings.http_keepalive_timeout,
        max_body=settings.http_max_body_bytes,
    )
    if adapters is None:
        adapters = build_adapters(settings, plan or plan_run(settings), engine=engine, web=web)
    return Service(
        engine=engine,
        adapters=dict(adapters),
        web=web,
        health=health,
        background=[Retention(store, days=settings.retention_days).run],
        grace_seconds=settings.shutdown_grace_seconds,
    )


async def serve(settings: Settings, *, role: Role = Role.ALL) -> int:
    """Run the service for a role until SIGTERM or SIGINT; returns the exit code."""
    plan = plan_run(settings, role=role)
    from prometheus_client import CollectorRegistry

    from bot.ops import Metrics

    metrics = Metrics(CollectorRegistry())
    logger.info("starting (role %s): %s", role.value, ", ".join(plan.platforms))
    async with AsyncExitStack() as stack:
        store = build_store(settings)
        stack.push_async_callback(store.close)
        await store.open()
        images = build_image_workers(settings)
        stack.push_async_callback(images.aclose)  # after the service has drained its jobs
        await images.start()
        engine = await stack.enter_async_context(
            open_engine(
                settings, store=store, images=images, observer=metrics, upstream_observer=metrics
            )
        )
        service = build_service(settings, engine=engine, store=store, metrics=metrics, plan=plan)
        await _run_until_signalled(service)
    return 0


async def _run_until_signalled(service: Service) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.request_stop)
    try:
        await service.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def run(settings: Settings, *, role: Role = Role.ALL) -> int:
    """`python -m bot run`: log, plan, serve; an unexpected error is logged and exits 1."""
    configure_logging(settings)
    plan_run(settings, role=role)  # nothing to run is refused before the loop starts
    try:
        return asyncio.run(serve(settings, role=role))
    except BotError:
        raise
    except Exception:
        logger.exception("the bot stopped on an unexpected error")
        return 1


async def imagine(settings: Settings, args: ImagineArgs) -> int:
    """`python -m bot imagine`: one turn from the terminal."""
    # The terminal never fails anyone's jobs: that is for the processes serving platforms.
    async with open_engine(settings, terminal=True) as engine:
        return await run_imagine(engine, args)


async def migrate_store(settings: Settings, *, target: str) -> int:
    """`python -m bot migrate-store --to postgresql://...`: copy every row, then say so."""
    from storage.migrate import copy_sqlite_to_postgres  # asyncpg only where it is used

    if settings.database_is_postgres or not target.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "migrate-store copies the SQLite database DATABASE_URL names into a PostgreSQL "
            "database: set DATABASE_URL=sqlite:///... and pass --to postgresql://..."
        )
    copied = await copy_sqlite_to_postgres(settings.database_path, target)
    print(", ".join(f"{table}: {rows}" for table, rows in copied.items()))
    print("Done. Point DATABASE_URL at the PostgreSQL database and start the bot.")
    return 0


async def _store_finding(settings: Settings) -> Finding:
    store = build_store(settings)
    try:
        await store.open()
    except BotError as exc:
        return Finding("store", " ".join(exc.user_message.split()), exc.exit_code)
    try:
        answers = await store.ping()
    finally:
        await store.close()
    where = describe_database(settings)
    if not answers:
        return Finding("store", f"{where} opened but does not answer", 3)
    return Finding("store", f"{where}: opened, schema up to date")


async def check(settings: Settings, *, online: bool) -> int:
    """`python -m bot check`: print one line per finding; the exit code of the worst."""
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
