"""The bot as production composes it (settings, engine, metrics, logging, Slack over HTTP)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from prometheus_client import CollectorRegistry

from adapters.slack import EVENTS_PATH, SlackAdapter
from bot.bootstrap import open_engine
from bot.config import Settings
from bot.engine import Engine
from bot.models import Request, ThreadKey
from bot.ops import Metrics, configure_logging
from tests.fakes.local_server import serve_locally

SIGNING_SECRET = "bench-signing-secret"
API_KEY = "sk-bench-key-0123456789"


def bench_settings(*, gptproto: str, database: Path, **overrides: Any) -> Settings:
    """Settings for a benchmark: everything from the arguments, nothing from .env."""
    values: dict[str, Any] = {
        "gptproto_api_key": API_KEY,
        "gptproto_base_url": gptproto,
        "database_url": f"sqlite:///{database}",
        "slack_signing_secret": SIGNING_SECRET,
        "log_level": "INFO",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class ErrorCount(logging.Handler):
    """Counts ERROR records, so that a benchmark whose jobs failed quietly fails loudly."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@asynccontextmanager
async def running_engine(settings: Settings, *, log: TextIO) -> AsyncIterator[Engine]:
    """The engine `python -m bot run` builds, logging at INFO into `log` as it would to stderr."""
    configure_logging(settings, stream=log)
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    metrics = Metrics(CollectorRegistry())
    try:
        async with open_engine(settings, observer=metrics, upstream_observer=metrics) as engine:
            metrics.watch_gate(engine.gate)
            await engine.recover(platforms=("slack",))
            yield engine
    finally:
        logging.getLogger().removeHandler(errors)
    if errors.messages:
        raise RuntimeError(f"the bot logged {len(errors.messages)} errors: {errors.messages[:3]}")


@asynccontextmanager
async def running_slack(
    engine: Engine, settings: Settings
) -> AsyncIterator[tuple[SlackAdapter, str]]:
    """The Slack adapter over HTTP on 127.0.0.1 (port 0), and the URL events go to."""
    adapter = SlackAdapter(engine=engine, settings=settings)
    app = web.Application()
    adapter.mount(app)
    runner, port = await serve_locally(app, access_log=None)
    try:
        await adapter.start()
        yield adapter, f"http://127.0.0.1:{port}{EVENTS_PATH}"
    finally:
        await adapter.stop()
        await runner.cleanup()


def job_request(job: int, text: str, *, attachments: tuple[Any, ...] = ()) -> Request:
    """A fresh conversation for one job, by its own user (the per-user limits stay on)."""
    key = ThreadKey("slack", "T0001", "C0001", f"bench-{job}")
    return Request(key=key, user=f"U{job:06d}", text=text, attachments=attachments)
