"""The command line: `python -m bot [run|check|imagine ...]`; bot.bootstrap does the wiring."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from adapters.cli import ImagineArgs, add_imagine_parser, make_parser
from bot import bootstrap
from bot.config import Settings, load_settings
from bot.errors import BotError
from bot.ops import RedactSecrets, Role, configure_logging, secret_values


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = make_parser()
    commands = parser.add_subparsers(dest="command", metavar="{run,check,imagine,migrate-store}")
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
    move = commands.add_parser(
        "migrate-store", help="copy the SQLite database (DATABASE_URL) into an empty PostgreSQL one"
    )
    move.add_argument("--to", required=True, metavar="postgresql://...", dest="target")
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
            return asyncio.run(bootstrap.imagine(settings, ImagineArgs.from_namespace(args)))
        if args.command == "migrate-store":
            configure_logging(settings)
            return asyncio.run(bootstrap.migrate_store(settings, target=args.target))
        if args.command == "check":
            _quiet_logging(settings)
            return asyncio.run(bootstrap.check(settings, online=args.online))
        return bootstrap.run(settings, role=getattr(args, "role", Role.ALL))
    except BotError as exc:
        print(f"error: {redactor.redact(exc.user_message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
