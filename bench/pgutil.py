"""Small PostgreSQL helpers for baselines: messaging tables and an ingest-shaped table."""

from __future__ import annotations

from typing import Any

import asyncpg
from alembic.migration import MigrationContext
from alembic.operations import Operations

from shared.db import Database
from shared.migrations import create_messaging_tables, tune_outbox

# The columns, keys and indexes of ingest's observation table (migration 0002), renamed.
OBSERVATION_TABLE = """
CREATE TABLE bench_observation_set (
  id uuid PRIMARY KEY, resident text NOT NULL, site_id varchar(32) NOT NULL,
  icb_code text NOT NULL, psc_code text NOT NULL, taken_at timestamptz NOT NULL,
  received_at timestamptz NOT NULL, source_platform text NOT NULL, platform_set_id text,
  content_hash text NOT NULL, respiration_rate text, spo2 text, on_oxygen boolean,
  systolic_bp text, pulse text, consciousness varchar(1), temperature_c text,
  spo2_scale_claim integer, soft_signs text NOT NULL, client_news2_total integer,
  recorder text, CONSTRAINT uq_bench_set_platform_id UNIQUE (source_platform, platform_set_id));
CREATE INDEX ix_bench_observation_set_resident ON bench_observation_set (resident);
"""
OBSERVATION_COLUMNS = (
    "id", "resident", "site_id", "icb_code", "psc_code", "taken_at", "received_at",
    "source_platform", "platform_set_id", "content_hash", "respiration_rate", "spo2",
    "on_oxygen", "systolic_bp", "pulse", "consciousness", "temperature_c", "spo2_scale_claim",
    "soft_signs", "client_news2_total", "recorder")


async def messaging_tables(db: Database) -> None:
    """The outbox, inbox and dead-letter tables every service database has, tuned as theirs."""
    def create(sync_conn: Any) -> None:
        op = Operations(MigrationContext.configure(sync_conn))
        create_messaging_tables(op)
        tune_outbox(op)

    async with db.engine.begin() as conn:
        await conn.run_sync(create)


async def connect(url: str) -> asyncpg.Connection:
    from tests.infra.postgres import to_asyncpg_kwargs

    return await asyncpg.connect(**to_asyncpg_kwargs(url))


STATEMENTS_ENV = "BENCH_PG_STATEMENTS"
TOP_STATEMENTS = """SELECT d.datname, s.calls, round(s.total_exec_time::numeric, 1) AS total_ms,
  round(s.mean_exec_time::numeric, 3) AS mean_ms, s.rows,
  left(regexp_replace(s.query, '\\s+', ' ', 'g'), 300) AS query
  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
  ORDER BY s.total_exec_time DESC LIMIT 25"""


async def fetchval(url: str, sql: str) -> Any:
    """One value from one statement on a connection of its own."""
    conn = await connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def statements_settings() -> str:
    """The ``TEST_PG_SETTINGS`` that load pg_stat_statements (``BENCH_PG_STATEMENTS=1``)."""
    return "shared_preload_libraries=pg_stat_statements pg_stat_statements.track=all"


async def dump_statements(base_url: str, out: Any) -> None:
    """Write PostgreSQL's 25 most expensive statements since the last dump, then reset."""
    conn = await connect(base_url + "/postgres")
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = await conn.fetch(TOP_STATEMENTS)
        out.write_text("\n".join(
            f"{r['total_ms']:>10} ms {r['calls']:>8} calls {r['mean_ms']:>8} ms/call "
            f"{r['rows']:>8} rows  [{r['datname']}] {r['query']}" for r in rows) + "\n")
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()
