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
from bot.config import Settings, allowed_models, model_table
from bot.engine import (
    AccessPolicy,
    BudgetDefaults,
    Engine,
    EngineOptions,
    JobGate,
    JobObserver,
    JobQueue,
    UserLimits,
)
from bot.errors import BotError, ConfigError
from bot.images import ImageWorkers, few_arenas
from bot.ops import (
    FileRoute,
    Health,
    Retention,
    Role,
    RunPlan,
    UpstreamTracker,
    configure_logging,
    links_from,
    plan_run,
    slack_over_http,
)
from bot.upstream import GptProtoClient, ImageGenerator, ModelTable, UpstreamObserver
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
    settings: Settings,
    *,
    observer: UpstreamObserver | None = None,
    models: ModelTable | None = None,
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
        models=models or model_table(settings),
    )


def build_engine(
    settings: Settings,
    *,
    store: Store,
    generator: ImageGenerator,
    terminal: bool = False,
    observer: JobObserver | None = None,
    images: ImageWorkers | None = None,
    models: ModelTable | None = None,
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
            models=models or model_table(settings),
            allowed_models=allowed_models(settings),
            budgets=BudgetDefaults(
                user_usd=settings.user_monthly_budget_usd,
                workspace_usd=settings.workspace_monthly_budget_usd,
            ),
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
    models = model_table(settings)  # MODELS_FILE is read once, for the client and the engine
    async with AsyncExitStack() as owned:
        if generator is None:
            built = build_generator(settings, observer=upstream_observer, models=models)
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
            models=models,
        )


def build_adapters(
    settings: Settings,
    plan: RunPlan,
    *,
    engine: Engine,
    web: WebServer,
    jobs: JobQueue | None = None,
    images: ImageWorkers | None = None,
) -> dict[str, Adapter]:
    """The platform adapters the plan enables; Slack over HTTP is mounted on the web server."""
    # Imported only when enabled: a Slack-only process never loads discord.py, and vice versa.
    adapters: dict[str, Adapter] = {}
    if plan.discord:
        from adapters.discord import DiscordAdapter

        adapters["discord"] = DiscordAdapter(
            engine=engine, settings=settings, links=web.links, images=images
        )
    if plan.slack:
        from adapters.slack import SlackAdapter

        slack = SlackAdapter(engine=engine, settings=settings, jobs=jobs)
        if slack_over_http(settings):
            slack.mount(web.app)
        adapters["slack"] = slack
    return adapters


def build_job_queue(settings: Settings, *, engine: Engine, plan: RunPlan) -> JobQueue | None:
    """The shared queue when this process needs one; None: the in-process route."""
    if not (settings.database_is_postgres and plan.slack):
        return None
    # Imported here: a process on SQLite never loads procrastinate or psycopg.
    from storage.jobqueue_procrastinate import ProcrastinateQueue

    # A process takes as many jobs as its own gate holds (running and waiting in line), so
    # each one it takes shows its hourglass and place in line at once, as on one process;
    # jobs wait in the table only while every process's gate is full.
    return ProcrastinateQueue(
        settings.database_url,
        concurrency=settings.max_concurrent_jobs + settings.max_queue,
        lease=settings.job_lease_seconds,
        adopt=engine.adopt,
    )


def build_service(
    settings: Settings,
    *,
    engine: Engine,
    store: Store,
    metrics: Metrics,
    adapters: Mapping[str, Adapter] | None = None,
    plan: RunPlan | None = None,
    jobs: JobQueue | None = None,
    images: ImageWorkers | None = None,
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
    links = links_from(settings)
    if links is not None:  # adapters find it as web.links
        web.serve_files(FileRoute(links, store))
    if adapters is None:
        plan = plan or plan_run(settings)
        adapters = build_adapters(settings, plan, engine=engine, web=web, jobs=jobs, images=images)
    return Service(
        engine=engine,
        adapters=dict(adapters),
        web=web,
        health=health,
        background=[Retention(store, days=settings.retention_days).run],
        grace_seconds=settings.shutdown_grace_seconds,
        jobs=jobs,
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
        jobs = build_job_queue(settings, engine=engine, plan=plan)
        service = build_service(
            settings,
            engine=engine,
            store=store,
            metrics=metrics,
            plan=plan,
            jobs=jobs,
            images=images,
        )
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
    few_arenas()  # before the loop's threads exist
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
