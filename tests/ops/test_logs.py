"""Logging: level, text and JSON lines, and no configured secret in any record."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from bot.config import Settings
from bot.ops import REDACTED, configure_logging

API_KEY = "sk-live-0123456789abcdef"
DISCORD = "MTIzNDU2.discord-token/with+chars"
SLACK_BOT = "xoxb-1111-2222-slackbot"
SLACK_APP = "xapp-1-A111-slackapp"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
SECRETS = (API_KEY, DISCORD, SLACK_BOT, SLACK_APP, SIGNING)


def _settings(**overrides: str) -> Settings:
    values: dict[str, Any] = {
        "gptproto_api_key": API_KEY,
        "discord_token": DISCORD,
        "slack_bot_token": SLACK_BOT,
        "slack_app_token": SLACK_APP,
        "slack_signing_secret": SIGNING,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def _configure(**overrides: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(_settings(**overrides), stream=stream)
    return stream


def _assert_clean(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output
        assert quote(secret, "") not in output


def test_secrets_in_messages_and_arguments_are_redacted_for_every_logger() -> None:
    stream = _configure()
    logging.getLogger("bot.engine.engine").info("calling with key %s", API_KEY)
    preformatted = f"token {DISCORD} refused"  # as libraries often log
    logging.getLogger("discord.http").warning(preformatted)
    logging.getLogger("slack_bolt.App").error(
        "headers %r", {"Authorization": f"Bearer {SLACK_BOT}"}
    )
    logging.getLogger("httpx").warning("app %s secret %s", SLACK_APP, SIGNING)
    logging.getLogger("aiohttp.client").info("url %s", "https://x.test/?t=" + quote(DISCORD, ""))
    output = stream.getvalue()
    _assert_clean(output)
    assert output.count(REDACTED) == 6
    assert "calling with key [redacted]" in output
    assert "Authorization': 'Bearer [redacted]'" in output


def test_exception_text_is_redacted() -> None:
    stream = _configure()
    logger = logging.getLogger("slack_sdk.web")
    try:
        raise RuntimeError(f"The server responded with: {{'error': 'bad token {SLACK_BOT}'}}")
    except RuntimeError:
        logger.exception("posting failed for channel %s", "C1")
    output = stream.getvalue()
    _assert_clean(output)
    assert "posting failed for channel C1" in output
    assert "Traceback" in output and "RuntimeError" in output
    assert f"bad token {REDACTED}" in output


def test_stack_info_and_warnings_are_redacted() -> None:
    stream = _configure()
    logging.getLogger("bot").warning("look", stack_info=True, extra={})
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated use of {SIGNING}", DeprecationWarning, stacklevel=1)
    output = stream.getvalue()
    _assert_clean(output)
    assert "Stack (most recent call last)" in output
    assert f"deprecated use of {REDACTED}" in output


def test_json_lines_carry_time_level_logger_message_and_exception() -> None:
    stream = _configure(log_format="json")
    logger = logging.getLogger("bot.ops.service")
    logger.info("started %d adapters", 2)
    try:
        raise ValueError(f"key {API_KEY} rejected")
    except ValueError:
        logger.exception("upstream failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["started 2 adapters", "upstream failed"]
    assert {line["logger"] for line in lines} == {"bot.ops.service"}
    assert [line["level"] for line in lines] == ["INFO", "ERROR"]
    assert all(line["time"].endswith("+00:00") for line in lines)
    assert "exception" not in lines[0]
    assert "ValueError: key [redacted] rejected" in lines[1]["exception"]
    _assert_clean(stream.getvalue())


def test_log_level_filters_records() -> None:
    stream = _configure(log_level="warning")
    logger = logging.getLogger("bot.engine.engine")
    logger.info("quiet")
    logger.warning("loud")
    assert stream.getvalue().splitlines()[-1].endswith("WARNING bot.engine.engine: loud")
    assert "quiet" not in stream.getvalue()


def test_configuring_twice_leaves_one_handler() -> None:
    _configure()
    stream = _configure()
    logging.getLogger("bot").warning("once")
    assert stream.getvalue().count("once") == 1
    assert len(logging.getLogger().handlers) == 1


def test_without_secrets_messages_pass_unchanged() -> None:
    stream = io.StringIO()
    configure_logging(Settings(_env_file=None), stream=stream)  # type: ignore[call-arg]
    logging.getLogger("bot").warning("value %s and %d", "x", 3)
    assert stream.getvalue().rstrip().endswith("bot: value x and 3")


def test_a_malformed_call_is_still_logged_and_redacted() -> None:
    stream = _configure()
    logging.getLogger("bot").warning("two %s %s", API_KEY)  # one argument short
    output = stream.getvalue()
    _assert_clean(output)
    assert "two %s %s" in output and REDACTED in output


LIMIT = 8 * 1024


def test_a_huge_message_becomes_a_bounded_line_with_a_marker() -> None:
    stream = _configure()
    logging.getLogger("aiohttp.server").error("body was %s", "x" * 20_000_000)
    line = stream.getvalue().rstrip("\n")
    assert "\n" not in line
    assert len(line) < LIMIT + 200
    kept = len("body was ") + line.split("body was ", 1)[1].index("...")
    assert kept == LIMIT
    assert line.endswith(f"... [truncated {20_000_009 - LIMIT} chars]")


def test_a_secret_across_the_cut_is_redacted_whole_never_half_printed() -> None:
    for log_format in ("text", "json"):
        stream = _configure(log_format=log_format)
        logging.getLogger("httpx").warning("%s%s tail", "a" * (LIMIT - 6), API_KEY)
        output = stream.getvalue()
        _assert_clean(output)
        assert API_KEY[:6] not in output
        assert "[trunc" in output and f"{'a' * 10}[reda" in output


def test_json_lines_stay_json_with_message_and_exception_bounded() -> None:
    stream = _configure(log_format="json")
    logger = logging.getLogger("bot.ops.web")
    try:
        raise ValueError("y" * 50_000)
    except ValueError:
        logger.exception("failed on %s", "z" * 50_000)
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(entry["message"]) < LIMIT + 50
    assert entry["message"].endswith(f"... [truncated {len('failed on ') + 50_000 - LIMIT} chars]")
    assert len(entry["exception"]) < LIMIT + 80
    # Both ends of a traceback are kept: where it started, and which error it was.
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "... [truncated " in entry["exception"] and entry["exception"].endswith("y" * 100)


def test_text_lines_bound_exception_text_and_messages_without_secrets_too() -> None:
    stream = io.StringIO()
    configure_logging(Settings(_env_file=None), stream=stream, max_chars=100)  # type: ignore[call-arg]
    logger = logging.getLogger("bot")
    try:
        raise RuntimeError("r" * 1000)
    except RuntimeError:
        logger.exception("m" * 1000)
    logger.info("short %s", "enough")
    lines = stream.getvalue().rstrip("\n").split("\n")
    first, traceback, last = lines[0], "\n".join(lines[1:-1]), lines[-1]
    assert first.endswith(f"bot: {'m' * 100}... [truncated 900 chars]")
    assert traceback.startswith("Traceback (most recent call last):")
    assert "... [truncated " in traceback and traceback.endswith("r" * 50)
    assert len(traceback) < 100 + 40
    assert last.endswith("bot: short enough")


def test_a_malformed_call_is_logged_even_with_no_secret_configured() -> None:
    stream = io.StringIO()
    configure_logging(Settings(_env_file=None), stream=stream)  # type: ignore[call-arg]
    logging.getLogger("bot").warning("two %s %s", "one")
    assert "two %s %s ('one',)" in stream.getvalue()


def test_the_database_password_is_redacted_too() -> None:
    password = "pg-s3cret/with@chars"
    url = f"postgresql://bot:{quote(password, safe='')}@db.internal:5432/bot"
    stream = _configure(database_url=url)
    logging.getLogger("storage.postgres").warning("connecting with %s (%s)", url, password)
    output = stream.getvalue()
    assert password not in output and quote(password, safe="") not in output
    assert "db.internal" in output


def test_per_request_lines_of_the_http_library_are_left_out_unless_debugging() -> None:
    stream = _configure(log_level="INFO")
    logging.getLogger("httpx").info('HTTP Request: POST http://127.0.0.1 "HTTP/1.1 200 OK"')
    logging.getLogger("httpx").warning("a warning still shows")
    assert "HTTP Request" not in stream.getvalue() and "still shows" in stream.getvalue()
    debugging = _configure(log_level="DEBUG")
    logging.getLogger("httpx").info("HTTP Request: shown when debugging")
    assert "shown when debugging" in debugging.getvalue()
