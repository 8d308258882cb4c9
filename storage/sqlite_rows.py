"""Conversions between SQLite rows and the value types of bot.models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.models import Thread, ThreadKey, Turn, TurnStatus, Usage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

INPUT = "input"
OUTPUT = "output"

# The columns of a turn followed by one of its images (role, hash); never the image bytes.
TURN_SELECT = """
    SELECT t.id, t.thread_id, t.number, t.parent_id, t.user_id, t.prompt, t.ratio, t.model,
           t.status, t.text, t.error, t.input_tokens, t.output_tokens, t.total_tokens,
           t.images, t.parts_json, t.created_at, t.size, i.role, i.sha256
"""
TURN_JOIN = "LEFT JOIN turn_images AS i ON i.turn_id = t.id"
TURN_ORDER = "i.role, i.position"

Row = Sequence[Any]


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def turns_from_rows(rows: Iterable[Row]) -> list[Turn]:
    """Turns from TURN_SELECT rows (one row per image, grouped by turn, order kept)."""
    columns: dict[int, Row] = {}
    images: dict[int, dict[str, list[str]]] = {}
    for row in rows:
        turn_id = int(row[0])
        if turn_id not in columns:
            columns[turn_id] = row
            images[turn_id] = {INPUT: [], OUTPUT: []}
        role, sha256 = row[18], row[19]
        if role is not None:
            images[turn_id][role].append(bytes(sha256).hex())
    return [_turn(columns[tid], images[tid]) for tid in columns]


def _turn(row: Row, images: dict[str, list[str]]) -> Turn:
    return Turn(
        id=row[0],
        thread_id=row[1],
        number=row[2],
        parent_id=row[3],
        user=row[4],
        prompt=row[5],
        ratio=row[6],
        model=row[7],
        inputs=tuple(images[INPUT]),
        outputs=tuple(images[OUTPUT]),
        status=TurnStatus(row[8]),
        text=row[9],
        usage=Usage(
            input_tokens=row[11], output_tokens=row[12], total_tokens=row[13], images=row[14]
        ),
        error=row[10],
        parts_json=row[15],
        created_at=from_micros(row[16]),
        size=row[17],
    )


def thread_from_row(row: Row, key: ThreadKey) -> Thread:
    """A Thread from (id, head_id, turn_count, pruned, created_at), named by key."""
    return Thread(
        id=row[0],
        key=key,
        head_id=row[1],
        turn_count=row[2],
        pruned=bool(row[3]),
        created_at=from_micros(row[4]),
    )


def placeholders(count: int) -> str:
    """'?, ?, ?' for an IN list of count values."""
    return ", ".join("?" * count)
