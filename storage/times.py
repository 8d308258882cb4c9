"""Time as every store keeps it: UTC to the microsecond, ledger days as ISO dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EVENT_RETENTION = timedelta(days=1)
"""Claimed event ids are kept this long: far beyond any platform's redelivery window."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def lease_end(now: datetime, lease: float) -> datetime:
    """When a lease of `lease` seconds taken now runs out."""
    return now + timedelta(seconds=lease)


def utc_day(moment: datetime) -> str:
    """The UTC calendar day of a moment, as the usage ledger keys it."""
    return as_utc(moment).date().isoformat()
