"""Small PostgreSQL helpers for baselines: messaging tables and an ingest-shaped table."""

from __future__ import annotations

from typing import Any

import asyncpg
from alembic.migration import MigrationContext
from alembic.operations import Operations

from shared.db import Database
from shared.migrations import create_messaging_tables

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
    """The outbox, inbox and dead-letter tables every service database has (shared v1 DDL)."""
    def create(sync_conn: Any) -> None:
        create_messaging_tables(Operations(MigrationContext.configure(sync_conn)))

    async with db.engine.begin() as conn:
        await conn.run_sync(create)


async def connect(url: str) -> asyncpg.Connection:
    from tests.infra.postgres import to_asyncpg_kwargs

    return await asyncpg.connect(**to_asyncpg_kwargs(url))
