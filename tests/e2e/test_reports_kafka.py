"""Reports on the scale path: PostgreSQL + a Kafka-protocol broker.

Stage and site events published to the broker (duplicates and a late correction included)
reach the adoption view, and observation and score events (a withdrawn set included) the
activity view; a replay of the same topics from the beginning into a fresh database derives
exactly the same facts and activity rows.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from services.reports import activity_queries, queries, rebuild
from services.reports.activity import ACT, RES
from services.reports.bootstrap import bootstrap
from services.reports.domain.adoption import Ambitions
from services.reports.domain.stages import ordinal
from services.reports.facts import FACT, Horizon
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.db import Database
from shared.events import encode
from shared.inbox import INBOX
from shared.migrations import upgrade
from shared.quarters import Quarter
from shared.settings import load_settings
from tests.infra.postgres import to_asyncpg_kwargs
from tests.integration.reports.support import (
    CLOCK,
    FIRST,
    flag,
    observation,
    score,
    score_withdrawal,
    site,
    stage,
    withdrawal,
)

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-that-is-long-enough-0123456789"
Q3 = ordinal(Quarter.parse("2022/23 Q3"))
TOPIC = {"SiteRegistered": "adoption.sites", "SiteClosed": "adoption.sites",
         "StageChanged": "adoption.stages", "ObservationRecorded": "ingest.observations",
         "ObservationSetWithdrawn": "ingest.observations", "ScoreComputed": "scoring.scores",
         "DeteriorationFlagged": "scoring.scores", "ScoreWithdrawn": "scoring.scores"}
TAKEN = datetime(2022, 11, 3, 10, tzinfo=UTC)   # 2022/23 Q3


def activity_events() -> list:
    """p1_x's set stands (low); p1_y's (medium, red, flagged) is withdrawn."""
    kept, wrong = observation("1-A", "p1_x", TAKEN), observation("1-A", "p1_y", TAKEN)
    scored = score("1-A", "p1_y", TAKEN, total=6, risk="medium", red=True, of=wrong)
    flagged = flag("1-A", "p1_y", TAKEN, of=wrong)
    return [kept, score("1-A", "p1_x", TAKEN, total=1, risk="low", of=kept), wrong, scored,
            flagged, withdrawal(wrong), score_withdrawal(scored, flagged)]


async def site_activity_q3(db) -> list[tuple]:
    """(site, observation sets, residents observed, scored, high+medium, flags) in Q3."""
    async with db.session() as s:
        rows = await activity_queries.activity(s, level="site", first=Q3, last=Q3, keep=None,
                                               code=None)
    return [(r["code"], r["observation_sets"], r["residents_observed"],
             r["complete_news2"]["denominator"], r["risk"]["medium"] + r["risk"]["high"],
             r["flags"]) for r in rows]


async def inbox_rows(db) -> int:
    """Events the live consumer has applied (its inbox rows)."""
    async with db.session() as s:
        return (await s.execute(select(func.count()).select_from(INBOX))).scalar_one()


async def activity_tables(db) -> tuple[list, list]:
    async with db.session() as s:
        return (sorted(map(tuple, (await s.execute(select(ACT))).all())),
                sorted(map(tuple, (await s.execute(select(RES))).all())))


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


@pytest.mark.parametrize("workers", [1, 2])
async def test_views_from_kafka_and_a_replay_into_a_fresh_database(postgres, broker, tmp_path,
                                                                   workers):
    """The live views, then a replay of the same topics into a fresh database: in one
    process, and split between two forked workers (partitions 0 and 2, and 1)."""
    prefix = f"r{uuid.uuid4().hex[:8]}."
    events = [site("1-A"), site("1-B"), site("1-C", "QHL"),
              stage("1-A", 3, date(2022, 5, 1)), stage("1-B", 7, date(2022, 8, 1)),
              stage("1-C", 5, date(2022, 6, 1), icb="QHL"),
              stage("1-A", 6, date(2022, 10, 1), reported=datetime(2023, 7, 9, tzinfo=UTC)),
              site("1-C", "QHL", 2, closed=date(2022, 12, 1)), *activity_events()]
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
        while await inbox_rows(runtime.db) < len(events) and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        want_activity = [("1-A", 1, 1, 1, 0, 0)]   # as if p1_y's set had never been recorded
        assert await site_activity_q3(runtime.db) == want_activity

        fresh = Database(postgres.create_database())
        await upgrade(fresh, runtime.migrations)
        applied, skipped = await rebuild.replay_from_bus(
            bus, fresh, Horizon.of(FIRST, lambda: CLOCK), workers=workers)
        assert (applied, skipped) == (len(events), 0)
        async with fresh.session() as a, runtime.db.session() as b:
            got = sorted(map(tuple, (await a.execute(select(FACT))).all()))
            want = sorted(map(tuple, (await b.execute(select(FACT))).all()))
        assert got == want and got
        assert await activity_tables(fresh) == await activity_tables(runtime.db)
        assert await site_activity_q3(fresh) == want_activity
        await fresh.dispose()
    finally:
        await runtime.stop()
        await bus.stop()


def published(broker, prefix: str, events: list) -> None:  # noqa: ANN001
    """``events`` published to topics of three partitions named with ``prefix``, on a loop
    of its own (the rebuild command under test runs its own too)."""
    async def publish() -> None:
        bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=3,
                       topics=list(set(TOPIC.values())), topic_prefix=prefix)
        await bus.start()
        try:
            records = [Record(TOPIC[e.type], e.subject, encode(e)) for e in events]
            assert all(r is None for r in await bus.publish(records))
        finally:
            await bus.stop()

    asyncio.run(publish())


def national_q3_of(config) -> tuple:  # noqa: ANN001 - settings
    """(denominator, stages) of 2022/23 Q3's national adoption row in ``config``'s database."""
    async def q3() -> tuple:
        runtime = bootstrap(config, clock=lambda: CLOCK)
        try:
            row = await national_q3(runtime)
            return row.denominator, row.stages
        finally:
            await runtime.db.dispose()

    return asyncio.run(q3())


def test_the_rebuild_command_from_the_bus_swaps_a_rebuilt_sqlite_file_in(broker, tmp_path):
    """``mandet rebuild-reports --from bus --swap``: every topic replayed into a fresh SQLite
    file, which then replaces the live one (service stopped)."""
    from services.reports import rebuild_command

    prefix = f"c{uuid.uuid4().hex[:8]}."
    events = [site("1-A"), site("1-B"), stage("1-A", 3, date(2022, 5, 1)),
              stage("1-B", 7, date(2022, 8, 1))]

    published(broker, prefix, events + events[:2])
    live = f"sqlite+aiosqlite:///{tmp_path / 'reports.db'}"
    config = settings(live, broker, prefix, tmp_path)
    summary = rebuild_command.run(config, source="bus", swap=True)
    assert summary.startswith("replayed 4 events (0 unreadable)") and "swapped into" in summary

    assert national_q3_of(config) == (2, (0, 0, 0, 1, 0, 0, 0, 1))


def test_the_rebuild_command_from_the_bus_into_postgresql_splits_between_workers(
        postgres, broker, tmp_path, forks):
    """``mandet rebuild-reports --from bus --into postgresql://... --workers 2``: the
    partitions shared between two processes; the summary points the service at the new
    database, whose views hold every event."""
    from services.reports import rebuild_command

    prefix = f"w{uuid.uuid4().hex[:8]}."
    events = [site("1-A"), site("1-B"), site("1-C", "QHL"), stage("1-A", 3, date(2022, 5, 1)),
              stage("1-B", 7, date(2022, 8, 1)), stage("1-C", 5, date(2022, 6, 1), icb="QHL")]

    published(broker, prefix, events)
    target = postgres.create_database()
    config = settings(f"sqlite+aiosqlite:///{tmp_path / 'reports.db'}", broker, prefix,
                      tmp_path)
    summary = rebuild_command.run(config, source="bus", into=target, workers=2)
    assert forks == [2]
    assert summary.startswith("replayed 6 events (0 unreadable)")
    assert summary.endswith(f"to use it: REPORTS_DATABASE_URL={target}")

    assert national_q3_of(settings(target, broker, prefix, tmp_path)) == (
        3, (0, 0, 0, 1, 0, 1, 0, 1))


def test_the_rebuild_command_swaps_a_rebuilt_postgresql_database_in(postgres, broker, tmp_path):
    """``--into <another database of the server> --swap``: the live database is renamed
    aside (kept, its views as they were) and the rebuilt one takes its name, so the live
    URL now reads the rebuild; refused, nothing renamed, while anyone is connected."""
    import asyncpg

    from services.reports import rebuild_command

    prefix = f"p{uuid.uuid4().hex[:8]}."
    events = [site("1-A"), site("1-B"), stage("1-A", 3, date(2022, 5, 1)),
              stage("1-B", 7, date(2022, 8, 1))]
    published(broker, prefix, events)
    live = postgres.create_database()
    config = settings(live, broker, prefix, tmp_path)
    rebuild_command.run(config, source="history")   # the live views: migrated, empty
    first = postgres.create_database()

    async def held_open() -> None:   # a reports process still connected to the live database
        conn = await asyncpg.connect(**to_asyncpg_kwargs(live))
        try:
            with pytest.raises(SystemExit, match=r"stop the reports processes first "
                                                 r"\(connected: 1 to t_"):
                await rebuild_command._swap(config, first, True)
        finally:
            await conn.close()

    summary = rebuild_command.run(config, source="bus", into=first, workers=1)
    assert summary.endswith(f"to use it: REPORTS_DATABASE_URL={first}")
    asyncio.run(held_open())
    assert national_q3_of(config) == (0, (0,) * 8)   # nothing renamed
    assert national_q3_of(settings(first, broker, prefix, tmp_path)) == (
        2, (0, 0, 0, 1, 0, 0, 0, 1))

    second = postgres.create_database()
    summary = rebuild_command.run(config, source="bus", into=second, swap=True, workers=1)
    name = make_url(live).database
    assert summary.startswith("replayed 4 events (0 unreadable)")
    assert f"swapped into {name} (the views before kept as {name}_before_" in summary
    assert national_q3_of(config) == (2, (0, 0, 0, 1, 0, 0, 0, 1))
    aside = summary.rsplit(" ", 1)[-1].rstrip(")")
    assert national_q3_of(settings(postgres.url_for(aside), broker, prefix, tmp_path)) == (
        0, (0,) * 8)
    assert not asyncio.run(_exists(live, make_url(second).database))
    postgres.drop_database(aside)


async def _exists(url: str, database: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(**to_asyncpg_kwargs(url))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                        database))
    finally:
        await conn.close()
