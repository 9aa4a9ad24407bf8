"""Rebuilds: from reports' own history, and from the bus into a fresh database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from sqlalchemy import delete, select

from services.reports import rebuild
from services.reports.facts import FACT, Horizon
from shared.bus.base import Record
from shared.bus.memory import MemoryBus
from shared.db import Database
from shared.events import encode, parse
from shared.migrations import upgrade
from tests.integration.reports.support import CLOCK, FIRST, deliver, reports_runtime, stage
from tests.integration.reports.test_api import EVENTS, TOPIC

pytestmark = pytest.mark.integration
HORIZON = Horizon.of(FIRST, lambda: CLOCK)


async def facts(db: Database) -> list[tuple]:
    async with db.session() as s:
        return sorted(tuple(r) for r in (await s.execute(select(FACT))).all())


async def test_rebuild_from_history_restores_lost_facts(tmp_path):
    rt = reports_runtime(tmp_path)
    await upgrade(rt.db, rt.migrations)
    await deliver(rt, EVENTS)
    before = await facts(rt.db)
    assert before
    async with rt.db.transaction() as s:
        await s.execute(delete(FACT))
    assert await rebuild.rebuild_from_history(rt.db, HORIZON) == len(before)
    assert await facts(rt.db) == before
    await rt.db.dispose()


async def test_replay_from_the_bus_into_a_fresh_database_equals_the_live_views(tmp_path):
    live = reports_runtime(tmp_path)
    await upgrade(live.db, live.migrations)
    await deliver(live, EVENTS)
    bus = MemoryBus(partitions=3)
    records = [Record(TOPIC[e.type], e.subject, encode(e)) for e in EVENTS]
    await bus.publish(records + records[:5] + [Record("adoption.sites", "x", b"not json")])
    fresh = Database(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    await upgrade(fresh, live.migrations)
    seen = []
    applied, skipped = await asyncio.wait_for(rebuild.replay_from_bus(
        bus, fresh, HORIZON, group="rebuild-test", batch_size=4, progress=seen.append), 10)
    assert (applied, skipped, sum(seen)) == (len(EVENTS), 1, len(records) + 6)
    assert await facts(fresh) == await facts(live.db)
    await fresh.dispose()
    await live.db.dispose()


@pytest.mark.parametrize("change", [{"schemaversion": 2}, {"data": {"to_stage": 8}},
                                    {"data": {"submission_id": "not a uuid"}}])
async def test_replay_refuses_a_stage_event_parse_refuses(tmp_path, change):
    """Stage events are validated as a batch; each is refused exactly when ``parse`` is."""
    rt = reports_runtime(tmp_path)
    await upgrade(rt.db, rt.migrations)
    good = stage("1-1", 3, date(2022, 5, 1))
    bad = good.model_copy(update={**change, "id": uuid.uuid4(),
                                  "data": {**good.data, **change.get("data", {})}})
    with pytest.raises(ValueError) as expected:
        parse(bad)
    with pytest.raises(type(expected.value)):
        async with rt.db.transaction() as s:
            await rebuild.replay(s, [good, bad], HORIZON)
    async with rt.db.transaction() as s:
        assert await rebuild.replay(s, [good], HORIZON) == 1
    await rt.db.dispose()
