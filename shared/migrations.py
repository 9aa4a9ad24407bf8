"""Alembic, one migration history per service; the schema comes from migrations only.

Each service keeps its revisions in ``services/<name>/migrations/versions``; its ``env.py``
calls :func:`run_env`. On PostgreSQL an advisory lock serialises concurrent upgrades (an API
process and a worker of one service may start together).

``create_messaging_tables`` is the v1 schema of the outbox, dead-letter and inbox tables that
every service database carries (frozen here; later changes get their own revisions).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.operations import Operations
from sqlalchemy.engine import Connection

from shared.db import Database

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TS = sa.DateTime(timezone=True)


def config_for(script_location: Path, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(db: Database, script_location: Path, revision: str = "head") -> None:
    """Bring the service database to ``revision`` (idempotent, safe to race on PostgreSQL)."""
    cfg = config_for(script_location)
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            key = zlib.crc32(str(script_location.parent.name).encode())
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        await conn.run_sync(_upgrade, cfg, revision)


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def run_env() -> None:
    """Body of every service's env.py (online mode with a connection handed in)."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `mandet migrate <service>`")
    context.configure(connection=connection, target_metadata=None,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def create_messaging_tables(op: Operations) -> None:
    op.create_table(
        "outbox",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_until", TS),
        sa.Column("published_at", TS),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_outbox_pending", "outbox", ["seq"],
                    postgresql_where=sa.text("published_at IS NULL"),
                    sqlite_where=sa.text("published_at IS NULL"))
    op.create_index("ix_outbox_pending_key", "outbox", ["key", "seq"],
                    postgresql_where=sa.text("published_at IS NULL"),
                    sqlite_where=sa.text("published_at IS NULL"))
    op.create_table(
        "outbox_dead_letter",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("dead_at", TS, nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("processed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "consumer_dead_letter",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text),
        sa.Column("event_type", sa.Text),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def drop_messaging_tables(op: Operations) -> None:
    for name in ("consumer_dead_letter", "inbox", "outbox_dead_letter", "outbox"):
        op.drop_table(name)


# The outbox is a queue: every row is inserted, leased and marked published within moments.
# PostgreSQL's default autovacuum (20 % of the table) lets dead rows and stale statistics pile
# up between runs; with stale statistics the relay's claim stopped using the pending index in
# seq order (measured: 33 ms a claim at a 15,000-row backlog, 3 ms with fresh statistics).
OUTBOX_STORAGE = {"autovacuum_vacuum_scale_factor": "0", "autovacuum_vacuum_threshold": "2000",
                  "autovacuum_analyze_scale_factor": "0", "autovacuum_analyze_threshold": "2000",
                  "fillfactor": "70"}


# Every statement that inserts outbox rows notifies the channel (delivered at commit, one per
# transaction); the relay leader LISTENs on its lock connection and claims at once instead of
# at its next poll. API and relay are different processes on the scale path.
OUTBOX_CHANNEL = "mandet_outbox"


def tune_outbox(op: Operations) -> None:
    """Queue-table storage settings and the insert notification for ``outbox`` (PostgreSQL;
    nothing to do on SQLite, where the relay shares the writer's process and is woken there)."""
    if op.get_bind().dialect.name == "postgresql":
        settings = ", ".join(f"{k} = {v}" for k, v in OUTBOX_STORAGE.items())
        op.execute(f"ALTER TABLE outbox SET ({settings})")
        op.execute("CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$")
        op.execute("CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox "
                   "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()")


def untune_outbox(op: Operations) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER outbox_inserted ON outbox")
        op.execute("DROP FUNCTION outbox_notify()")
        op.execute(f"ALTER TABLE outbox RESET ({', '.join(OUTBOX_STORAGE)})")


def index_inbox_age(op: Operations) -> None:
    """``ix_inbox_processed_at``: inbox retention deletes the oldest rows first (``prune``)."""
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])


def unindex_inbox_age(op: Operations) -> None:
    op.drop_index("ix_inbox_processed_at", table_name="inbox")


def script_location_of(module_file: str) -> Path:
    """``services/<name>/migrations`` beside a service's bootstrap module."""
    return Path(module_file).resolve().parent / "migrations"


