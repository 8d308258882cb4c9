"""The command line: `python -m bot [run|check|imagine ...]`; bot.bootstrap does the wiring."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from adapters.cli import ImagineArgs, add_imagine_parser, make_parser
from bot import bootstrap
from bot.config import Settings, load_settings
from bot.errors import BotError, ConfigError
from bot.ops import (
    Finding,
    RedactSecrets,
    Role,
    configure_logging,
    make_client,
    offline_findings,
    online_findings,
    secret_values,
)


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
            return asyncio.run(migrate_store(settings, target=args.target))
        if args.command == "check":
            _quiet_logging(settings)
            return asyncio.run(check(settings, online=args.online))
        return bootstrap.run(settings, role=getattr(args, "role", Role.ALL))
    except BotError as exc:
        print(f"error: {redactor.redact(exc.user_message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


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
    store = bootstrap.build_store(settings)
    try:
        await store.open()
    except BotError as exc:
        return Finding("store", " ".join(exc.user_message.split()), exc.exit_code)
    try:
        answers = await store.ping()
    finally:
        await store.close()
    where = bootstrap.describe_database(settings)
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


if __name__ == "__main__":
    sys.exit(main())
