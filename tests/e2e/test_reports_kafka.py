"""Reports on the scale path: PostgreSQL + a Kafka-protocol broker.

Stage and site events published to the broker (duplicates and a late correction included)
reach the adoption view; a replay of the same topics from the beginning into a fresh database
derives exactly the same facts.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from services.reports import queries, rebuild
from services.reports.bootstrap import bootstrap
from services.reports.domain.adoption import Ambitions
from services.reports.domain.stages import ordinal
from services.reports.facts import FACT, Horizon
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.db import Database
from shared.events import encode
from shared.migrations import upgrade
from shared.quarters import Quarter
from shared.settings import load_settings
from tests.integration.reports.support import CLOCK, FIRST, site, stage

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-that-is-long-enough-0123456789"
Q3 = ordinal(Quarter.parse("2022/23 Q3"))
TOPIC = {"SiteRegistered": "adoption.sites", "SiteClosed": "adoption.sites",
         "StageChanged": "adoption.stages"}


def settings(url: str, broker, prefix: str, tmp_path):
    return load_settings("reports", database_url=url, bus="kafka", env="test",
                         kafka_bootstrap=broker.bootstrap, kafka_enable_idempotence=False,
                         kafka_partitions=3, kafka_topic_prefix=prefix, jwt_secret=SECRET,
                         data_dir=tmp_path, first_quarter=FIRST)


async def national_q3(runtime):
    async with runtime.db.session() as s:
        [row] = await queries.adoption(s, area=queries.Area("national"), programme="care-homes",
                                       first=Q3, last=Q3, tool="*", targets=Ambitions())
    return row


async def test_views_from_kafka_and_a_replay_into_a_fresh_database(postgres, broker, tmp_path):
    prefix = f"r{uuid.uuid4().hex[:8]}."
    events = [site("1-A"), site("1-B"), site("1-C", "QHL"),
              stage("1-A", 3, date(2022, 5, 1)), stage("1-B", 7, date(2022, 8, 1)),
              stage("1-C", 5, date(2022, 6, 1), icb="QHL"),
              stage("1-A", 6, date(2022, 10, 1), reported=datetime(2023, 7, 9, tzinfo=UTC)),
              site("1-C", "QHL", 2, closed=date(2022, 12, 1))]
    records = [Record(TOPIC[e.type], e.subject, encode(e)) for e in events]
    bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=3,
                   topics=list(set(TOPIC.values())), topic_prefix=prefix)
    await bus.start()
    assert all(r is None for r in await bus.publish(records + records[:4]))

    runtime = bootstrap(settings(postgres.create_database(), broker, prefix, tmp_path),
                        clock=lambda: CLOCK)
    await runtime.start()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        row = await national_q3(runtime)
        while row.stages != (0, 0, 0, 0, 0, 0, 1, 1) and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            row = await national_q3(runtime)
        assert (row.denominator, row.stages) == (2, (0, 0, 0, 0, 0, 0, 1, 1))

        fresh = Database(postgres.create_database())
        await upgrade(fresh, runtime.migrations)
        applied, skipped = await rebuild.replay_from_bus(
            bus, fresh, Horizon.of(FIRST, lambda: CLOCK))
        assert (applied, skipped) == (len(events), 0)
        async with fresh.session() as a, runtime.db.session() as b:
            got = sorted(map(tuple, (await a.execute(select(FACT))).all()))
            want = sorted(map(tuple, (await b.execute(select(FACT))).all()))
        assert got == want and got
        await fresh.dispose()
    finally:
        await runtime.stop()
        await bus.stop()


def test_the_rebuild_command_from_the_bus_swaps_a_rebuilt_sqlite_file_in(broker, tmp_path):
    """``mandet rebuild-reports --from bus --swap``: every topic replayed into a fresh SQLite
    file, which then replaces the live one (service stopped)."""
    from services.reports import rebuild_command

    prefix = f"c{uuid.uuid4().hex[:8]}."
    events = [site("1-A"), site("1-B"), stage("1-A", 3, date(2022, 5, 1)),
              stage("1-B", 7, date(2022, 8, 1))]

    async def publish() -> None:
        bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=3,
                       topics=list(set(TOPIC.values())), topic_prefix=prefix)
        await bus.start()
        try:
            records = [Record(TOPIC[e.type], e.subject, encode(e)) for e in events]
            assert all(r is None for r in await bus.publish(records + records[:2]))
        finally:
            await bus.stop()

    asyncio.run(publish())
    live = f"sqlite+aiosqlite:///{tmp_path / 'reports.db'}"
    config = settings(live, broker, prefix, tmp_path)
    summary = rebuild_command.run(config, source="bus", swap=True)
    assert summary.startswith("replayed 4 events (0 unreadable)") and "swapped into" in summary

    async def q3() -> tuple:
        runtime = bootstrap(config, clock=lambda: CLOCK)
        try:
            row = await national_q3(runtime)
            return row.denominator, row.stages
        finally:
            await runtime.db.dispose()

    assert asyncio.run(q3()) == (2, (0, 0, 0, 1, 0, 0, 0, 1))
