"""Logging for the whole process: level, text or JSON lines, secrets redacted, records bounded."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import quote, unquote, urlsplit

from bot.config import Settings

REDACTED = "[redacted]"
# Shorter values are no real key or token, and replacing them would garble every line.
MIN_SECRET_LENGTH = 4
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A request body or an upstream answer echoed into a message must not become a giant line.
MAX_RECORD_CHARS = 8 * 1024


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Every configured secret: the API key, the Discord token, the Slack tokens and secret,
    the link secret, and the database's password when DATABASE_URL carries one."""
    secrets = (
        settings.gptproto_api_key,
        settings.discord_token,
        settings.slack_bot_token,
        settings.slack_app_token,
        settings.slack_signing_secret,
        settings.link_secret,
    )
    found = [secret.get_secret_value() for secret in secrets if secret is not None]
    written = urlsplit(settings.database_url).password
    if written:
        password = unquote(written)  # the URL holds it percent-encoded
        found += list(dict.fromkeys((password, written, quote(password, safe=""))))
    return tuple(found)


class RedactSecrets(logging.Filter):
    """Replaces every secret in a record's message, arguments, exception and stack text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        variants = {
            form
            for secret in secrets
            if len(secret) >= MIN_SECRET_LENGTH
            for form in (secret, quote(secret, ""))
        }
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)
        self._exceptions = logging.Formatter()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.redact(_message(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class TruncateRecords(logging.Filter):
    """Bounds a record's message, exception and stack text, each to max_chars, with a marker."""

    def __init__(self, max_chars: int = MAX_RECORD_CHARS) -> None:
        super().__init__()
        self._max = max_chars
        self._exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = _message(record)
        # Rendered once here, so a malformed call is still logged rather than failing to format.
        record.msg = _keep_head(message, self._max)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        # A traceback's last line names the error: both ends are kept.
        if record.exc_text and len(record.exc_text) > self._max:
            record.exc_text = _keep_ends(record.exc_text, self._max)
        if record.stack_info and len(record.stack_info) > self._max:
            record.stack_info = _keep_ends(record.stack_info, self._max)
        return True


def _keep_head(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated {len(text) - limit} chars]"


def _keep_ends(text: str, limit: int) -> str:
    head, tail = limit // 2, limit - limit // 2
    return f"{text[:head]}... [truncated {len(text) - limit} chars] ...{text[-tail:]}"


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a malformed call must still be logged, and redacted
        return f"{record.msg!s} {record.args!r}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and exception text if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


QUIET_LIBRARIES = ("httpx", "httpcore", "procrastinate")
"""Loggers held at WARNING unless LOG_LEVEL is DEBUG (procrastinate's INFO lines carry each
job's arguments: users' messages, twice per job)."""


def configure_logging(
    settings: Settings,
    *,
    stream: TextIO | None = None,
    level: int | str | None = None,
    max_chars: int | None = None,
) -> logging.Handler:
    """Install the process's one root handler (replacing any), redacting and bounding records."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    # On the handler, not a logger: records of every library's loggers pass through it.
    handler.addFilter(RedactSecrets(secret_values(settings)))
    # After redaction: a secret is replaced whole before any cut could leave half of it.
    handler.addFilter(TruncateRecords(settings.log_max_chars if max_chars is None else max_chars))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level if level is None else level)
    # httpx logs every request at INFO: per job, lines (and CPU) that the job's own line
    # already covers. Their warnings and errors still show; DEBUG turns them all back on.
    chatty = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(chatty)
    logging.captureWarnings(True)
    return handler
