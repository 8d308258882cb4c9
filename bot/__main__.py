"""The composition root: `python -m bot [run|check|imagine ...]` wires the concrete classes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from adapters.cli import ImagineArgs, add_imagine_parser, make_parser, run_imagine
from bot.access import AccessPolicy
from bot.config import Settings, load_settings
from bot.core import Engine, EngineOptions, JobObserver
from bot.errors import BotError, ConfigError
from bot.gptproto import GptProtoClient
from bot.limits import JobGate, UserLimits
from storage.sqlite import SqliteStore

logger = logging.getLogger(__name__)


def _generator(settings: Settings) -> GptProtoClient:
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
    )


@asynccontextmanager
async def open_engine(
    settings: Settings, *, terminal: bool = False, observer: JobObserver | None = None
) -> AsyncIterator[Engine]:
    """An engine on the configured store and upstream; closed on exit.

    The terminal is the operator's own: no per-user limits or access lists apply there.
    """
    generator = _generator(settings)
    store = SqliteStore(settings.database_path)
    await store.open()
    try:
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
        yield Engine(
            store=store,
            generator=generator,
            gate=gate,
            user_limits=limits,
            access=access,
            options=options,
            observer=observer,
        )
    finally:
        await generator.aclose()
        await store.close()


async def _imagine(settings: Settings, args: ImagineArgs) -> int:
    async with open_engine(settings, terminal=True) as engine:
        await engine.start()
        return await run_imagine(engine, args)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = make_parser()
    commands = parser.add_subparsers(dest="command", metavar="{run,check,imagine}")
    commands.add_parser("run", help="run every adapter whose token is set (the default)")
    commands.add_parser("check", help="validate the settings and the store")
    add_imagine_parser(commands)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bot`; returns the process exit code."""
    args = _parse(argv)
    try:
        settings = load_settings()
        if args.command == "imagine":
            # The terminal prints results; only warnings and worse belong beside them.
            level = max(logging.WARNING, logging.getLevelName(settings.log_level))
            logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
            return asyncio.run(_imagine(settings, ImagineArgs.from_namespace(args)))
        print(f"'{args.command or 'run'}' is not available in this build.", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
