"""PostgreSQL: a group-commit flush writes its sets and their events in ONE statement.

``record_sets`` on a connection outside a transaction stores the sets and, atomically in the
same statement, one outbox row per set that went in (``shared.outbox.insert_with_events``):
committed without BEGIN or COMMIT, duplicates and conflicts answered as in a transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import func, select

from services.ingest.models import SETS
from services.ingest.observations import record_sets
from services.ingest.validation import content_hash
from shared.migrations import OUTBOX_CHANNEL
from shared.outbox import OUTBOX, insert_with_events
from tests.infra.postgres import to_asyncpg_kwargs
from tests.integration.ingest.conftest import HOME, running

pytestmark = pytest.mark.integration
KEY = b"k" * 32


def row(platform_set_id: str, pulse: str = "70") -> dict:
    r = {"respiration_rate": None, "spo2": None, "on_oxygen": None, "systolic_bp": None,
         "pulse": pulse, "consciousness": None, "temperature_c": None, "resident": "p1_abc",
         "site_id": HOME, "icb_code": "QJK", "psc_code": "SW",
         "taken_at": datetime(2026, 11, 22, 11, 30, tzinfo=UTC), "source_platform": "carehq",
         "platform_set_id": platform_set_id, "spo2_scale_claim": None, "soft_signs": "",
         "client_news2_total": None, "recorder": None}
    r["content_hash"] = content_hash(r, KEY)
    return r


@pytest.fixture
async def pg(pg_url, tmp_path):
    async with running(data_dir=tmp_path, database_url=pg_url) as harness:
        yield harness.runtime.db


async def counts(db) -> tuple[int, int]:
    async with db.engine.connect() as conn:
        return ((await conn.execute(select(func.count()).select_from(SETS))).scalar(),
                (await conn.execute(select(func.count()).select_from(OUTBOX))).scalar())


async def test_sets_and_their_events_commit_in_one_statement(pg):
    before = await counts(pg)
    async with pg.engine.connect() as conn:
        outcomes = await record_sets(conn, [row("a"), row("b")], received_at=datetime.now(UTC))
        assert not conn.in_transaction()   # no BEGIN was sent: the statement committed itself
        assert [o.kind for o in outcomes] == ["accepted", "accepted"]
        assert await counts(pg) == (before[0] + 2, before[1] + 2)   # seen from elsewhere
        again = await record_sets(conn, [row("a"), row("b", pulse="71"), row("c")],
                                  received_at=datetime.now(UTC))
    assert [(o.kind, o.status) for o in again] == [("duplicate", 200), ("rejected", 409),
                                                   ("accepted", 201)]
    assert again[0].id == outcomes[0].id
    assert await counts(pg) == (before[0] + 3, before[1] + 3)   # an event per real insert


async def test_the_statement_notifies_the_relay_and_refuses_a_transaction(pg, pg_url):
    listener = await asyncpg.connect(**to_asyncpg_kwargs(pg.engine.url))
    heard = asyncio.Event()
    await listener.add_listener(OUTBOX_CHANNEL, lambda *_: heard.set())
    try:
        async with pg.engine.connect() as conn:
            await record_sets(conn, [row(str(uuid.uuid4()))], received_at=datetime.now(UTC))
            await asyncio.wait_for(heard.wait(), 5)
            await conn.begin()
            raw = (await conn.get_raw_connection()).driver_connection
            await conn.exec_driver_sql("SELECT 1")
            with pytest.raises(RuntimeError, match="outside a transaction"):
                await insert_with_events(raw, SETS, [row("x")], [], key="id")
    finally:
        await listener.close()
