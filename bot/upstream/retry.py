"""Upstream failures: what each status means, which to retry, how long to wait between tries."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bot.errors import (
    AuthError,
    BotError,
    ConfigError,
    ContentPolicy,
    InsufficientBalance,
    InvalidRequest,
    RateLimited,
    Unavailable,
    UnknownModel,
    UnreadableResponse,
    UpstreamTimeout,
)
from bot.upstream.catalog import ModelTable
from bot.upstream.port import BUILTIN

# Statuses worth another attempt: rate limits and transient server or gateway failures
# (520-524 and 529 are Cloudflare's "origin unreachable/overloaded" family).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})

# How an upstream says a model id is gone when it does not answer 404 (gateways use 400/403).
_GONE_WORDS = ("not found", "retired", "deprecated", "no longer available", "shut down")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s\s*$")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with capped exponential backoff and jitter."""

    max_attempts: int = 4
    max_backoff: float = 30.0
    base_delay: float = 1.0

    def backoff(self, failed_attempts: int, random: Callable[[], float]) -> float:
        """The pause after the n-th failed attempt: exponential, capped, jittered to 50-100%."""
        exponent = max(0, failed_attempts - 1)
        ceiling = min(self.max_backoff, self.base_delay * 2.0**exponent)
        return ceiling * (0.5 + 0.5 * random())

    def delay(
        self, failed_attempts: int, server_delay: float | None, random: Callable[[], float]
    ) -> float:
        """The pause before the next attempt: what the server asked for, else our backoff."""
        if server_delay is not None:
            return max(0.0, server_delay)
        return self.backoff(failed_attempts, random)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration as JSON: "53s", "1.5s", or {"seconds": 53, "nanos": 0}."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        return float(match.group(1)) if match else None
    if isinstance(value, Mapping):
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def retry_info_delay(payload: Any) -> float | None:
    """Google's RetryInfo.retryDelay from an error body's details, in seconds."""
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    details = error.get("details") if isinstance(error, Mapping) else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, Mapping) and (
            detail.get("@type") == _RETRY_INFO or "retryDelay" in detail
        ):
            delay = parse_duration(detail.get("retryDelay"))
            if delay is not None:
                return delay
    return None


def server_delay(headers: Mapping[str, str], payload: Any) -> float | None:
    """The longest delay the server asked for, by header or by RetryInfo."""
    delays = [
        delay
        for delay in (parse_retry_after(headers.get("retry-after")), retry_info_delay(payload))
        if delay is not None
    ]
    return max(delays) if delays else None


@dataclass(frozen=True)
class Failure:
    """One failed attempt: the error to raise if it is the last, and whether to try again."""

    error: BotError
    retryable: bool
    reason: str  # a short label for logs and metrics: "http_503", "timeout", "connection"
    server_delay: float | None = None
    # The whole request was sent before the connection dropped or the answer timed out: the
    # upstream may have made, and billed, an image nobody received. Retried at most once.
    possibly_billed: bool = False


def classify_status(
    status: int,
    payload: Any,
    headers: Mapping[str, str],
    *,
    model: str,
    scrub: Callable[[str], str],
    models: ModelTable = BUILTIN,
) -> Failure:
    """The typed failure an HTTP status and error body (None when not JSON) amount to."""
    message = scrub(_error_message(payload))
    said = f": {message}" if message else ""
    if status in RETRYABLE_STATUSES:
        delay = server_delay(headers, payload)
        error: BotError = (
            RateLimited(delay)
            if status == 429
            else Unavailable(
                f"The image service is unavailable right now (HTTP {status}{said}). "
                "Please try again in a few minutes."
            )
        )
        return Failure(error, True, f"http_{status}", delay)
    if status == 408:
        return Failure(UpstreamTimeout(), True, "http_408")
    error = _final_error(status, payload, message, model, models)
    return Failure(error, False, f"http_{status}")


def unknown_model(model: str, models: ModelTable = BUILTIN) -> UnknownModel:
    """The error for a model the upstream no longer serves, naming the table's successor."""
    retired = models.retired.get(model)
    row = models.models.get(model)
    on = retired.on if retired is not None else (row.retired_on if row is not None else None)
    return UnknownModel(model, models.successor(model), retired_on=on)


def _gone(status: int, lowered: str, model: str) -> bool:
    """Whether an error says the model is unknown or retired (404 with an API body, 410, or
    words to that effect about the model on another status)."""
    if status in (404, 410):
        return True
    about_model = "model" in lowered or model.lower() in lowered
    return about_model and any(words in lowered for words in _GONE_WORDS)


def _final_error(
    status: int, payload: Any, message: str, model: str, models: ModelTable
) -> BotError:
    said = f": {message}" if message else ""
    lowered = message.lower()
    if 300 <= status < 400:
        return ConfigError(
            f"The image service redirected the request (HTTP {status}); check GPTPROTO_BASE_URL."
        )
    if payload is None:
        return _error_without_json(status)
    if _gone(status, lowered, model):
        return unknown_model(model, models)
    if status == 400:
        if "unsafe" in lowered or "content policy" in lowered:
            return ContentPolicy(message)
        if "API_KEY_INVALID" in _error_reasons(payload) or "api key not valid" in lowered:
            return AuthError()
        return InvalidRequest(f"The image service refused the request{said}")
    if status == 401:
        return AuthError()
    if status == 403:
        if "balance" in lowered or "insufficient" in lowered:
            return InsufficientBalance()
        return AuthError(
            f"The image service refused the bot's API key{said}. The bot's operator "
            "needs to check GPTPROTO_API_KEY."
        )
    if status == 413:
        return InvalidRequest("The request was too large for the image service (HTTP 413).")
    if status < 500:
        return InvalidRequest(f"The image service refused the request (HTTP {status}{said}).")
    return Unavailable(f"The image service failed (HTTP {status}{said}). Please try again later.")


def _error_without_json(status: int) -> BotError:
    # A page rather than an API error means a gateway or a wrong address answered, not the API.
    if status == 401:
        return AuthError()
    if status == 403:
        return UnreadableResponse(
            "A gateway in front of the image service refused the request with a web page "
            "(HTTP 403), not an API answer. The bot's operator should check GPTPROTO_BASE_URL "
            "and whether the server's address is blocked."
        )
    if status == 404:
        return ConfigError(
            "The image service answered HTTP 404 with a web page: check GPTPROTO_BASE_URL."
        )
    return UnreadableResponse(
        f"The image service answered HTTP {status} with something that is not an API error."
    )


def error_status(payload: Any) -> int | None:
    """The HTTP status an error body embedded in a 200 answer stands for; None if no error."""
    if not isinstance(payload, Mapping) or not payload.get("error"):
        return None
    if any(key in payload for key in ("candidates", "choices", "data")):
        return None
    error = payload["error"]
    if isinstance(error, Mapping):
        for value in (error.get("code"), error.get("type")):
            code = _as_int(value)
            if code is not None and 400 <= code <= 599:
                return code
    return 502


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _error_message(payload: Any) -> str:
    if not isinstance(payload, Mapping):
        return ""
    error = payload.get("error")
    if isinstance(error, str):
        return error[:300]
    if isinstance(error, Mapping):
        payload = error
    message = payload.get("message")
    return message[:300] if isinstance(message, str) else ""


def _error_reasons(payload: Any) -> set[str]:
    error = payload.get("error") if isinstance(payload, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    if not isinstance(details, list):
        return set()
    return {str(d.get("reason")) for d in details if isinstance(d, Mapping) and d.get("reason")}
