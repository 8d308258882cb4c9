"""The SQLite schema as an ordered list of migrations, applied by `PRAGMA user_version`."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from bot.errors import ConfigError

logger = logging.getLogger(__name__)

# Times are INTEGER microseconds since the Unix epoch (UTC) and image hashes are 32-byte
# BLOBs: both are a third of their text forms, and rows stay small at a million turns.
_V1: tuple[str, ...] = (
    """
    CREATE TABLE threads (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        head_id INTEGER REFERENCES turns (id) ON DELETE SET NULL,
        turn_count INTEGER NOT NULL DEFAULT 0,
        pruned INTEGER NOT NULL DEFAULT 0
    )
    """,
    # Deleting a turn looks up the threads whose head it is (ON DELETE SET NULL).
    "CREATE INDEX threads_by_head ON threads (head_id)",
    """
    CREATE TABLE thread_keys (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        thread_id INTEGER NOT NULL REFERENCES threads (id),
        is_alias INTEGER NOT NULL,
        PRIMARY KEY (platform, workspace, channel, thread)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX thread_keys_by_thread ON thread_keys (thread_id, is_alias)",
    """
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        thread_id INTEGER NOT NULL REFERENCES threads (id),
        number INTEGER NOT NULL,
        parent_id INTEGER REFERENCES turns (id) ON DELETE SET NULL,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
        model TEXT NOT NULL,
        ratio TEXT,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        total_tokens INTEGER NOT NULL DEFAULT 0,
        images INTEGER NOT NULL DEFAULT 0,
        prompt TEXT NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        error TEXT,
        parts_json TEXT
    )
    """,
    "CREATE UNIQUE INDEX turns_by_thread ON turns (thread_id, number)",
    "CREATE INDEX turns_by_parent ON turns (parent_id)",
    "CREATE INDEX turns_by_age ON turns (created_at)",
    "CREATE INDEX turns_pending ON turns (status) WHERE status = 'pending'",
    # Covers the daily-quota count without touching the table.
    """
    CREATE INDEX turns_by_user ON turns (platform, user_id, created_at)
        WHERE status <> 'failed'
    """,
    # A rowid table: large blobs do not belong in a WITHOUT ROWID b-tree.
    """
    CREATE TABLE images (
        sha256 BLOB PRIMARY KEY,
        mime_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    )
    """,
    """
    CREATE TABLE turn_images (
        turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('input', 'output')),
        position INTEGER NOT NULL,
        sha256 BLOB NOT NULL REFERENCES images (sha256),
        PRIMARY KEY (turn_id, role, position)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX turn_images_by_image ON turn_images (sha256)",
    """
    CREATE TABLE messages (
        platform TEXT NOT NULL,
        message_id TEXT NOT NULL,
        turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        PRIMARY KEY (platform, message_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX messages_by_turn ON messages (turn_id, platform)",
    """
    CREATE TABLE events (
        platform TEXT NOT NULL,
        event_id TEXT NOT NULL,
        claimed_at INTEGER NOT NULL,
        PRIMARY KEY (platform, event_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX events_by_age ON events (claimed_at)",
    """
    CREATE TABLE usage_ledger (
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        day TEXT NOT NULL,
        workspace TEXT NOT NULL,
        model TEXT NOT NULL,
        jobs INTEGER NOT NULL,
        images INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        PRIMARY KEY (platform, user_id, day, workspace, model)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX usage_by_workspace ON usage_ledger (platform, workspace, day)",
)

# The health check's write probe: one row, rewritten, so a full disk shows before a job fails.
_V2: tuple[str, ...] = (
    """
    CREATE TABLE health (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        written_at INTEGER NOT NULL
    )
    """,
)

# Ownership, for several processes on one file: a pending turn and an open event claim name
# the instance holding them and until when (NULL: a version that knew no owners, so expired);
# named leases (a Discord shard, a thread's turn in progress) live in a table of their own.
_V3: tuple[str, ...] = (
    "ALTER TABLE turns ADD COLUMN owner TEXT",
    "ALTER TABLE turns ADD COLUMN lease_until INTEGER",
    "ALTER TABLE events ADD COLUMN owner TEXT",
    "ALTER TABLE events ADD COLUMN lease_until INTEGER",
    "ALTER TABLE events ADD COLUMN settled INTEGER NOT NULL DEFAULT 1",
    "CREATE INDEX events_open ON events (owner) WHERE settled = 0",
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        lease_until INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX leases_by_owner ON leases (owner)",
)

# Cost by output size, possibly billed calls and budgets. A turn records the size asked for
# (NULL: the model's one size, as every older turn had). The ledger's primary key gains the
# size, which a WITHOUT ROWID table cannot change in place: it is rebuilt, its rows copied as
# '1K', the single size every model had before sizes were offered.
_V4: tuple[str, ...] = (
    "ALTER TABLE turns ADD COLUMN size TEXT",
    """
    CREATE TABLE usage_ledger_v4 (
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        day TEXT NOT NULL,
        workspace TEXT NOT NULL,
        model TEXT NOT NULL,
        size TEXT NOT NULL,
        jobs INTEGER NOT NULL,
        images INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        possibly_billed INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (platform, user_id, day, workspace, model, size)
    ) WITHOUT ROWID
    """,
    """
    INSERT INTO usage_ledger_v4 (platform, user_id, day, workspace, model, size, jobs, images,
        input_tokens, output_tokens, cost_usd)
    SELECT platform, user_id, day, workspace, model, '1K', jobs, images, input_tokens,
        output_tokens, cost_usd FROM usage_ledger
    """,
    "DROP TABLE usage_ledger",
    "ALTER TABLE usage_ledger_v4 RENAME TO usage_ledger",
    "CREATE INDEX usage_by_workspace ON usage_ledger (platform, workspace, day)",
    # Read before every job of a workspace: small, and looked up by its key's first two columns.
    """
    CREATE TABLE budgets (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('user', 'role', 'workspace')),
        subject TEXT NOT NULL,
        monthly_usd REAL NOT NULL,
        PRIMARY KEY (platform, workspace, scope, subject)
    ) WITHOUT ROWID
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4)
"""Schema version N is reached by applying MIGRATIONS[N-1]; only ever append."""

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection, *, path: Path) -> int:
    """Bring the database up to SCHEMA_VERSION; returns the number of migrations applied.

    Each step reads the version inside its own write transaction: processes starting together
    on a new file wait for one another, and each applies only what is still missing.
    """
    applied = 0
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = _checked_version(db, path)
            if version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {int(version) + 1}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if version >= SCHEMA_VERSION:
            return applied
        applied += 1
        logger.info("database %s migrated to schema version %s", path, version + 1)


def _checked_version(db: sqlite3.Connection, path: Path) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchall()[0]
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"The database {path} has schema version {version}, written by a newer version "
            f"of the bot (this one knows up to version {SCHEMA_VERSION}). Upgrade the bot or "
            "point DATABASE_URL at another database."
        )
    if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise ConfigError(
            f"The database {path} holds another program's tables, not the bot's. Point "
            "DATABASE_URL at a new file; the bot creates it."
        )
    return int(version)
