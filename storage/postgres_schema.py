"""The PostgreSQL schema as an ordered list of migrations, recorded in a table of their own."""

from __future__ import annotations

import logging

import asyncpg

from bot.errors import ConfigError

logger = logging.getLogger(__name__)

VERSIONS_TABLE = "banana_bot_migrations"
"""Where applied versions are recorded; not `schema_migrations`, which Rails and others use."""

# Any constant shared by every bot process: processes starting together migrate one at a time.
_MIGRATION_LOCK = 0x62616E616E61

# Times are timestamptz (UTC, microseconds, like the clock's values) and image hashes are
# 32-byte bytea. Ownership: a pending turn and an open event claim name the instance holding
# them and until when; named leases (a Discord shard, say) live in a table of their own.
_V1: tuple[str, ...] = (
    """
    CREATE TABLE threads (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        platform text NOT NULL,
        workspace text NOT NULL,
        created_at timestamptz NOT NULL,
        head_id bigint,
        turn_count integer NOT NULL DEFAULT 0,
        pruned boolean NOT NULL DEFAULT false
    )
    """,
    # `added` orders a thread's aliases: the newest is where its conversation lives now.
    """
    CREATE TABLE thread_keys (
        platform text NOT NULL,
        workspace text NOT NULL,
        channel text NOT NULL,
        thread text NOT NULL,
        thread_id bigint NOT NULL REFERENCES threads (id),
        is_alias boolean NOT NULL,
        added bigint GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (platform, workspace, channel, thread)
    )
    """,
    "CREATE INDEX thread_keys_by_thread ON thread_keys (thread_id, is_alias, added)",
    """
    CREATE TABLE turns (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        thread_id bigint NOT NULL REFERENCES threads (id),
        number integer NOT NULL,
        parent_id bigint REFERENCES turns (id) ON DELETE SET NULL,
        platform text NOT NULL,
        user_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
        model text NOT NULL,
        ratio text,
        created_at timestamptz NOT NULL,
        finished_at timestamptz,
        input_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        total_tokens bigint NOT NULL DEFAULT 0,
        images integer NOT NULL DEFAULT 0,
        prompt text NOT NULL,
        text text NOT NULL DEFAULT '',
        error text,
        parts_json text,
        owner text,
        lease_until timestamptz
    )
    """,
    """
    ALTER TABLE threads ADD CONSTRAINT threads_head_fkey
        FOREIGN KEY (head_id) REFERENCES turns (id) ON DELETE SET NULL
    """,
    # Deleting a turn looks up the threads whose head it is and its children (SET NULL).
    "CREATE INDEX threads_by_head ON threads (head_id)",
    "CREATE UNIQUE INDEX turns_by_thread ON turns (thread_id, number)",
    "CREATE INDEX turns_by_parent ON turns (parent_id)",
    "CREATE INDEX turns_by_age ON turns (created_at)",
    "CREATE INDEX turns_pending ON turns (platform, lease_until) WHERE status = 'pending'",
    "CREATE INDEX turns_pending_by_owner ON turns (owner) WHERE status = 'pending'",
    """
    CREATE INDEX turns_by_user ON turns (platform, user_id, created_at)
        WHERE status <> 'failed'
    """,
    """
    CREATE TABLE images (
        sha256 bytea PRIMARY KEY CHECK (length(sha256) = 32),
        mime_type text NOT NULL,
        size integer NOT NULL,
        data bytea NOT NULL
    )
    """,
    # Image formats are compressed already: trying pglz on every megabyte only burns CPU.
    "ALTER TABLE images ALTER COLUMN data SET STORAGE EXTERNAL",
    """
    CREATE TABLE turn_images (
        turn_id bigint NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        role text NOT NULL CHECK (role IN ('input', 'output')),
        position integer NOT NULL,
        sha256 bytea NOT NULL REFERENCES images (sha256),
        PRIMARY KEY (turn_id, role, position)
    )
    """,
    "CREATE INDEX turn_images_by_image ON turn_images (sha256)",
    """
    CREATE TABLE messages (
        platform text NOT NULL,
        message_id text NOT NULL,
        turn_id bigint NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        PRIMARY KEY (platform, message_id)
    )
    """,
    "CREATE INDEX messages_by_turn ON messages (turn_id, platform)",
    # A row written before claims had owners (settled's default) is an answered event.
    """
    CREATE TABLE events (
        platform text NOT NULL,
        event_id text NOT NULL,
        claimed_at timestamptz NOT NULL,
        owner text,
        lease_until timestamptz,
        settled boolean NOT NULL DEFAULT true,
        PRIMARY KEY (platform, event_id)
    )
    """,
    "CREATE INDEX events_by_age ON events (claimed_at)",
    "CREATE INDEX events_open ON events (owner) WHERE NOT settled",
    """
    CREATE TABLE usage_ledger (
        platform text NOT NULL,
        user_id text NOT NULL,
        day date NOT NULL,
        workspace text NOT NULL,
        model text NOT NULL,
        jobs bigint NOT NULL,
        images bigint NOT NULL,
        input_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        cost_usd double precision NOT NULL,
        PRIMARY KEY (platform, user_id, day, workspace, model)
    )
    """,
    "CREATE INDEX usage_by_workspace ON usage_ledger (platform, workspace, day)",
    """
    CREATE TABLE leases (
        name text PRIMARY KEY,
        owner text NOT NULL,
        lease_until timestamptz NOT NULL
    )
    """,
    # The health check's write probe: one row, rewritten.
    """
    CREATE TABLE health (
        id integer PRIMARY KEY CHECK (id = 1),
        written_at timestamptz NOT NULL
    )
    """,
)

# Cost by output size, possibly billed calls and budgets. A turn records the size asked for
# (NULL: the model's one size, as every older turn had). Ledger rows written before sizes were
# offered are '1K', the single size every model had; the default only fills them, so a write
# that forgets the size fails. The primary key gains the size.
_V2: tuple[str, ...] = (
    "ALTER TABLE turns ADD COLUMN size text",
    "ALTER TABLE usage_ledger ADD COLUMN size text NOT NULL DEFAULT '1K'",
    "ALTER TABLE usage_ledger ALTER COLUMN size DROP DEFAULT",
    "ALTER TABLE usage_ledger ADD COLUMN possibly_billed bigint NOT NULL DEFAULT 0",
    """
    ALTER TABLE usage_ledger DROP CONSTRAINT usage_ledger_pkey,
        ADD PRIMARY KEY (platform, user_id, day, workspace, model, size)
    """,
    # Read before every job of a workspace: small, and looked up by its key's first two columns.
    """
    CREATE TABLE budgets (
        platform text NOT NULL,
        workspace text NOT NULL,
        scope text NOT NULL CHECK (scope IN ('user', 'role', 'workspace')),
        subject text NOT NULL,
        monthly_usd double precision NOT NULL,
        PRIMARY KEY (platform, workspace, scope, subject)
    )
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
"""Schema version N is reached by applying MIGRATIONS[N-1]; only ever append."""

SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(db: asyncpg.Connection, *, where: str) -> int:
    """Bring the database up to SCHEMA_VERSION; returns the number of migrations applied.

    `where` names the database in messages (host and database, never a password).
    """
    await db.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        version = await _version(db, where=where)
        for number in range(version + 1, SCHEMA_VERSION + 1):
            async with db.transaction():
                for statement in MIGRATIONS[number - 1]:
                    await db.execute(statement)
                await db.execute(f"INSERT INTO {VERSIONS_TABLE} (version) VALUES ($1)", number)
            logger.info("database %s migrated to schema version %s", where, number)
    finally:
        await db.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return SCHEMA_VERSION - version


async def _version(db: asyncpg.Connection, *, where: str) -> int:
    """The schema version the database is at; 0 for an empty one, refusing a stranger's."""
    schema = await db.fetchval("SELECT current_schema()")
    if schema is None:
        raise ConfigError(
            f"The database {where} has no schema to create tables in: its search_path names "
            "none that exists. Create the schema or fix the search_path."
        )
    if await db.fetchval("SELECT to_regclass($1)", VERSIONS_TABLE) is None:
        tables = await db.fetchval(
            "SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            schema,
        )
        if tables:
            raise ConfigError(
                f"The database {where} holds another program's tables (schema {schema}), not "
                "the bot's. Point DATABASE_URL at an empty database; the bot creates its tables."
            )
        await db.execute(
            f"CREATE TABLE {VERSIONS_TABLE} (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        return 0
    version = int(await db.fetchval(f"SELECT coalesce(max(version), 0) FROM {VERSIONS_TABLE}"))
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"The database {where} has schema version {version}, written by a newer version "
            f"of the bot (this one knows up to version {SCHEMA_VERSION}). Upgrade the bot or "
            "point DATABASE_URL at another database."
        )
    return version
