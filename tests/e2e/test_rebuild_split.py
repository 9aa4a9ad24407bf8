"""The rebuild from the broker split between forked workers (PostgreSQL + Kafka broker).

A generated history (registrations, moves, closures, stage returns in two programmes,
observation sets and scores, one set withdrawn; duplicates and an unreadable message) is
published to topics of four partitions, then replayed twice into fresh databases: in one
process, and by three forked workers (partitions 0 and 3, 1, 2). Every reports table must be
the same, every index back as the migrations made it. The same for the engine alone
(``replay_envelopes``: decoded events, split by a hash of their keys).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from services.reports import rebuild
from services.reports.bootstrap import bootstrap
from services.reports.facts import Horizon
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.db import Database
from shared.events import Envelope, encode
from shared.forked import WorkerFailed
from shared.migrations import upgrade
from shared.settings import load_settings
from tests.integration.reports.support import (
    AREAS,
    CLOCK,
    FIRST,
    TOPIC_OF,
    observation,
    score,
    score_withdrawal,
    site,
    stage,
    updated,
    withdrawal,
)

pytestmark = pytest.mark.e2e
HORIZON = Horizon.of(FIRST, lambda: CLOCK)
# columns that say when or under which random stamp a row was written, not what it holds
VOLATILE = {"processed_at", "applied_at", "views_stamp", "version", "quality"}
# the freshness row's last event: whichever worker committed last (any event is "last")
LAST_EVENT = {"reports_freshness": {"event_id", "event_type", "event_time"}}


def history(rnd: random.Random) -> list[Envelope]:
    icbs, events = sorted(AREAS), []
    for n in range(40):
        site_id, icb = f"1-{n}", rnd.choice(icbs)
        events.append(site(site_id, icb))
        if rnd.random() < 0.2:
            icb = rnd.choice(icbs)
            events.append(updated(site_id, icb, 2))
        if rnd.random() < 0.1:
            events.append(site(site_id, icb, 3, closed=date(2023, 1, 1) + timedelta(n)))
        for _ in range(rnd.randint(0, 5)):
            events.append(stage(
                site_id, rnd.randint(0, 7), date(2022, 4, 1) + timedelta(rnd.randint(0, 480)),
                tool=rnd.choice([None, "NEWS2", "RESTORE2"]), icb=icb,
                programme=rnd.choice(["care-homes", "mental-health"]),
                reported=datetime(2023, rnd.choice([1, 4, 7]), 1, tzinfo=UTC)))
        for resident in range(rnd.randint(0, 3)):
            taken = datetime(2022, 10, 1, tzinfo=UTC) + timedelta(hours=rnd.randint(0, 5000))
            seen = observation(site_id, f"p{n}_{resident}", taken, icb)
            scored = score(site_id, f"p{n}_{resident}", taken, total=rnd.randint(0, 9),
                           risk=rnd.choice(["low", "medium", "high"]), icb=icb, of=seen)
            events += [seen, scored]
            if rnd.random() < 0.2:
                events += [withdrawal(seen), score_withdrawal(scored)]
    return events


async def published(broker, events: list[Envelope], rnd: random.Random) -> KafkaBus:
    bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=4,
                   topics=sorted(set(TOPIC_OF.values())),
                   topic_prefix=f"s{uuid.uuid4().hex[:8]}.")
    await bus.start()
    records = [Record(TOPIC_OF[e.type], e.subject, encode(e)) for e in events]
    again = rnd.sample(records, 30)   # redelivered: on their originals' partitions
    assert all(r is None for r in await bus.publish(
        records + again + [Record("adoption.stages", "1-0", b"not an envelope")]))
    return bus


async def fresh_database(postgres, tmp_path) -> Database:
    url = postgres.create_database()
    runtime = bootstrap(load_settings("reports", database_url=url, data_dir=str(tmp_path)))
    await upgrade(runtime.db, runtime.migrations)
    await runtime.db.dispose()
    return Database(url)


async def tables(db: Database) -> dict[str, list[tuple]]:
    """Every reports table (and the inbox), rows sorted, volatile columns left out."""
    from sqlmodel import SQLModel

    out = {}
    async with db.session() as s:
        for table in SQLModel.metadata.sorted_tables:
            if not (table.name.startswith("reports_") or table.name == "inbox"):
                continue
            skip = VOLATILE | LAST_EVENT.get(table.name, set())
            columns = [c for c in table.columns if c.name not in skip]
            out[table.name] = sorted(map(tuple, (await s.execute(select(*columns))).all()),
                                     key=repr)
    return out


async def indexes(db: Database) -> list[tuple]:
    async with db.session() as s:
        return sorted(map(tuple, (await s.execute(text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema()"))).all()))


async def test_a_rebuild_split_between_workers_equals_one_in_a_single_process(
        postgres, broker, tmp_path, forks):
    rnd = random.Random(6)
    events = history(rnd)
    bus = await published(broker, events, rnd)
    try:
        got = []
        for workers in (1, 3):
            db = await fresh_database(postgres, tmp_path)
            seen, told = [], []
            result = await rebuild.replay_from_bus(bus, db, HORIZON, workers=workers,
                                                   batch_size=50, progress=seen.append,
                                                   total=told.append)
            got.append((result, sum(seen), told, await tables(db), await indexes(db)))
            await db.dispose()
    finally:
        await bus.stop()
    assert forks == [3]   # the single replay forked nothing; the split one, three workers
    messages = len(events) + 30 + 1
    single, split = got
    assert single[:3] == split[:3] == ((len(events), 1), messages, [messages])
    for name, rows in single[3].items():
        assert split[3][name] == rows, name
    assert single[3]["reports_stage_fact"] and single[3]["reports_activity"]
    assert split[4] == single[4]   # the keys dropped for the load are all back


async def test_a_worker_that_fails_fails_the_rebuild_and_the_keys_come_back(
        postgres, broker, tmp_path, monkeypatch):
    """The second worker replays its share, then fails; the first is stopped or done, the
    rebuild raises with the worker's error, and the keys the split dropped are rebuilt."""
    rnd = random.Random(7)
    bus = await published(broker, history(rnd), rnd)
    real = rebuild._replay_share

    async def second_fails(share, note):  # noqa: ANN001, ANN202
        done = await real(share, note)
        if share.feed.reader.share == (1, 2):
            raise RuntimeError("the second worker's database went away")
        return done

    monkeypatch.setattr(rebuild, "_replay_share", second_fails)
    db = await fresh_database(postgres, tmp_path)
    try:
        before = await indexes(db)
        with pytest.raises(WorkerFailed, match="the second worker's database went away"):
            await rebuild.replay_from_bus(bus, db, HORIZON, workers=2)
        assert await indexes(db) == before
    finally:
        await db.dispose()
        await bus.stop()


async def test_the_engine_split_between_workers_equals_it_in_a_single_process(postgres, tmp_path,
                                                                          forks):
    """``replay_envelopes``, decoded events (duplicates included) shared out by key."""
    rnd = random.Random(8)
    events = history(rnd)
    delivered = rebuild.canonical(events + rnd.sample(events, 30))
    got = []
    for workers in (1, 3):
        db = await fresh_database(postgres, tmp_path)
        seen: list[int] = []
        applied = await rebuild.replay_envelopes(db, HORIZON, delivered, workers=workers,
                                                 progress=seen.append)
        got.append((applied, sum(seen), await tables(db), await indexes(db)))
        await db.dispose()
    assert forks == [3]
    single, split = got
    assert single[:2] == split[:2] == (len(events), len(delivered))
    for name, rows in single[2].items():
        assert split[2][name] == rows, name
    assert single[2]["reports_stage_fact"] and single[2]["reports_activity"]
    assert split[3] == single[3]


async def test_a_split_whose_records_lack_offsets_derives_from_the_table(postgres, tmp_path,
                                                                        forks, monkeypatch):
    """A return whose ``reported_at`` came without an offset: the workers cannot derive
    from their memory (PostgreSQL reads such an instant back as it interprets it), so the
    facts are derived from the table, as the single replay does; the same database."""
    rnd = random.Random(9)
    events = history(rnd) + [stage("1-0", 6, date(2022, 9, 1),
                                   reported=datetime(2023, 4, 1, 12))]   # naive
    from_table: list[bool] = []
    real = rebuild._derive_all

    async def derive_all(session, horizon, replay, stored=None):  # noqa: ANN001, ANN202
        from_table.append(replay is None)
        return await real(session, horizon, replay, stored)

    monkeypatch.setattr(rebuild, "_derive_all", derive_all)
    got = []
    for workers in (3, 1):
        db = await fresh_database(postgres, tmp_path)
        await rebuild.replay_envelopes(db, HORIZON, rebuild.canonical(events), workers=workers)
        got.append((await tables(db), await indexes(db)))
        await db.dispose()
    assert forks == [3] and from_table[0]
    assert got[0] == got[1]
