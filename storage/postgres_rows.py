"""Conversions between PostgreSQL records and the value types of bot.models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.models import Thread, ThreadKey, Turn, TurnStatus, Usage

INPUT = "input"
OUTPUT = "output"

Record = Mapping[str, Any]

TURN_COLUMNS = """
    t.id, t.thread_id, t.number, t.parent_id, t.user_id, t.prompt, t.ratio, t.model, t.status,
    t.text, t.error, t.input_tokens, t.output_tokens, t.total_tokens, t.images, t.parts_json,
    t.created_at, t.size
"""


def images_of(role: str) -> str:
    """The hashes of a turn `t`'s images in one role, in order, as the array `<role>s`."""
    return (
        "ARRAY(SELECT i.sha256 FROM turn_images AS i"
        f" WHERE i.turn_id = t.id AND i.role = '{role}' ORDER BY i.position) AS {role}s"
    )


# A turn with its image hashes in order, one record per turn; never the image bytes.
TURN_SELECT = f"SELECT {TURN_COLUMNS}, {images_of(INPUT)}, {images_of(OUTPUT)}"


def turn_from_record(row: Record) -> Turn:
    return Turn(
        id=row["id"],
        thread_id=row["thread_id"],
        number=row["number"],
        parent_id=row["parent_id"],
        user=row["user_id"],
        prompt=row["prompt"],
        ratio=row["ratio"],
        model=row["model"],
        inputs=tuple(bytes(h).hex() for h in row["inputs"]),
        outputs=tuple(bytes(h).hex() for h in row["outputs"]),
        status=TurnStatus(row["status"]),
        text=row["text"],
        usage=Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            total_tokens=row["total_tokens"],
            images=row["images"],
        ),
        error=row["error"],
        parts_json=row["parts_json"],
        created_at=row["created_at"],
        size=row["size"],
    )


def turns_from_records(rows: Iterable[Record]) -> list[Turn]:
    return [turn_from_record(row) for row in rows]


def thread_from_record(row: Record, key: ThreadKey) -> Thread:
    """A Thread from (id, head_id, turn_count, pruned, created_at), named by key."""
    return Thread(
        id=row["id"],
        key=key,
        head_id=row["head_id"],
        turn_count=row["turn_count"],
        pruned=row["pruned"],
        created_at=row["created_at"],
    )


def key_from_record(row: Record) -> ThreadKey:
    return ThreadKey(row["platform"], row["workspace"], row["channel"], row["thread"])


def row_count(status: str) -> int:
    """The rows a command touched, from asyncpg's status tag ("UPDATE 3", "INSERT 0 1")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
