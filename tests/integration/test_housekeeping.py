"""A worker keeps its inbox within retention by itself (shared.runtime)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.scoring.bootstrap import bootstrap
from shared.bus.memory import MemoryBus
from shared.inbox import INBOX
from shared.migrations import upgrade
from shared.outbox import utcnow
from shared.settings import load_settings

pytestmark = pytest.mark.integration


async def inbox_count(runtime) -> int:
    async with runtime.db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(INBOX))).scalar_one()


async def test_a_worker_prunes_inbox_rows_past_retention_on_start(tmp_path):
    runtime = bootstrap(load_settings("scoring", data_dir=tmp_path, inbox_retention_hours=24),
                        bus=MemoryBus())
    await upgrade(runtime.db, runtime.migrations)
    now = utcnow()
    async with runtime.db.transaction() as session:
        await session.execute(INBOX.insert(), [
            {"consumer": "scoring", "event_id": uuid.uuid4(), "processed_at": at}
            for at in (now - timedelta(hours=25), now - timedelta(hours=23))])
    await runtime.start()
    try:
        for _ in range(100):
            if await inbox_count(runtime) == 1:
                break
            await asyncio.sleep(0.05)
        assert await inbox_count(runtime) == 1
        assert runtime.inbox_pruned_total == 1
    finally:
        await runtime.stop()
