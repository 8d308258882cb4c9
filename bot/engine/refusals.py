"""Refusals counted by reason: what the bot's own rules said no to, before any upstream call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.engine.turns import JobObserver
from bot.errors import (
    AccessDenied,
    BotError,
    InputError,
    QueueFull,
    QuotaExceeded,
    ShuttingDown,
    UserRateLimited,
)

REASONS: tuple[tuple[type[BotError], str], ...] = (
    (AccessDenied, "access"),
    (UserRateLimited, "rate_limit"),
    (QuotaExceeded, "quota"),
    (QueueFull, "queue_full"),
    (ShuttingDown, "shutting_down"),
    (InputError, "input"),
)


def refusal_reason(error: BotError) -> str | None:
    """The reason a refusal is counted under; None for what is not a refusal (upstream trouble)."""
    return next((reason for kind, reason in REASONS if isinstance(error, kind)), None)


@contextmanager
def counting_refusals(observer: JobObserver | None) -> Iterator[None]:
    """Tell the observer about a refusal that leaves the block; the error goes on."""
    try:
        yield
    except BotError as error:
        reason = refusal_reason(error)
        if reason is not None and observer is not None:
            observer.on_refused(reason=reason)
        raise
