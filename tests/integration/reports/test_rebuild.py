"""Rebuilds: from reports' own history, and from the bus into a fresh database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, select

from services.reports import rebuild
from services.reports.facts import FACT, Horizon
from shared.bus.base import Record
from shared.bus.memory import MemoryBus
from shared.db import Database
from shared.events import encode, parse
from shared.inbox import INBOX
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
    seen, totals = [], []
    applied, skipped = await asyncio.wait_for(rebuild.replay_from_bus(
        bus, fresh, HORIZON, batch_size=4, progress=seen.append, total=totals.append), 10)
    assert (applied, skipped, sum(seen)) == (len(EVENTS), 1, len(records) + 6)
    assert totals == [len(records) + 6]   # told once: a progress bar's total
    assert await facts(fresh) == await facts(live.db)
    await fresh.dispose()
    await live.db.dispose()


async def test_replay_from_the_bus_takes_withdrawn_sets_back_as_the_live_views_do(tmp_path):
    """``replay_from_bus`` (the rebuild command's path) reads ingest's and scoring's
    withdrawals with the rest: the replayed activity rows equal the live consumer's, and
    what was withdrawn is gone from both."""
    from services.reports.activity import ACT, RES
    from tests.integration.reports.support import (
        TOPIC_OF,
        flag,
        observation,
        score,
        score_withdrawal,
        withdrawal,
    )

    taken = datetime(2022, 11, 3, 10, tzinfo=UTC)   # 2022/23 Q3 (ordinal 8090)
    kept, wrong = observation("1-A", "p1_x", taken), observation("1-A", "p1_y", taken)
    scored = score("1-A", "p1_y", taken, total=6, risk="medium", red=True, of=wrong)
    flagged = flag("1-A", "p1_y", taken, of=wrong)
    events = [kept, score("1-A", "p1_x", taken, total=1, risk="low", of=kept), wrong, scored,
              flagged, withdrawal(wrong), score_withdrawal(scored, flagged)]
    live = reports_runtime(tmp_path)
    await upgrade(live.db, live.migrations)
    await deliver(live, events)
    bus = MemoryBus(partitions=3)
    await bus.publish([Record(TOPIC_OF[e.type], e.subject, encode(e)) for e in events])
    fresh = Database(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    await upgrade(fresh, live.migrations)
    assert await asyncio.wait_for(rebuild.replay_from_bus(bus, fresh, HORIZON), 10) == (7, 0)
    rows = []
    for db in (live.db, fresh):
        async with db.session() as s:
            rows.append((sorted(tuple(r) for r in (await s.execute(select(ACT))).all()),
                         sorted(tuple(r) for r in (await s.execute(select(RES))).all())))
    #  site, qn, icb, psc, obs, scored, complete, low, low-med, med, high, red, flags, mismatch,
    #  residents
    assert rows[0] == rows[1] == ([("1-A", 8090, "QJK", "SW", 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1)],
                                  [("1-A", 8090, "p1_x", 1), ("1-A", 8090, "p1_y", 0)])
    await fresh.dispose()
    await live.db.dispose()


async def test_replay_from_the_bus_ends_under_live_traffic(tmp_path):
    """The replay reads up to where the topics ended when it started; events published
    meanwhile (never a quiet moment) do not keep it going."""
    live = reports_runtime(tmp_path)
    bus = MemoryBus(partitions=3)
    await bus.publish([Record(TOPIC[e.type], e.subject, encode(e)) for e in EVENTS])
    later = 0

    async def traffic() -> None:
        nonlocal later
        while True:
            e = stage(f"9-{later}", 2, date(2022, 5, 1))
            await bus.publish([Record(TOPIC[e.type], e.subject, encode(e))])
            later += 1
            await asyncio.sleep(0.001)

    fresh = Database(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    await upgrade(fresh, live.migrations)
    publishing = asyncio.create_task(traffic())
    try:
        applied, skipped = await asyncio.wait_for(rebuild.replay_from_bus(
            bus, fresh, HORIZON, batch_size=2, wait_seconds=0.05), 10)
    finally:
        publishing.cancel()
    assert skipped == 0 and len(EVENTS) <= applied < len(EVENTS) + later
    await fresh.dispose()


@pytest.mark.parametrize("change", [{"schemaversion": 2}, {"data": {"to_stage": 8}},
                                    {"data": {"submission_id": "not a uuid"}},
                                    {"type": "SiteRegistered"}, {"type": "StageUndone"}])
async def test_replay_skips_and_counts_an_event_parse_refuses(tmp_path, change):
    """Each event is validated once, in the replay, and refused exactly when ``parse``
    refuses it: skipped and counted, its id not in the inbox, as the live consumer
    dead-letters it. A site event is validated too, not only read."""
    rt = reports_runtime(tmp_path)
    await upgrade(rt.db, rt.migrations)
    good = stage("1-1", 3, date(2022, 5, 1))
    bad = good.model_copy(update={**change, "id": uuid.uuid4(),
                                  "data": {**good.data, **change.get("data", {})}})
    with pytest.raises(ValueError):
        parse(bad)
    replay = rebuild.Replay(HORIZON)
    async with rt.db.transaction() as s:
        assert await replay.apply(s, [bad, good, bad]) == 1
    assert replay.unreadable == 2
    async with rt.db.session() as s:
        assert set((await s.execute(select(INBOX.c.event_id))).scalars()) == {good.id}
    await rt.db.dispose()


async def table_rows(db: Database) -> dict[str, list]:
    """Every table a replay writes, sorted (inbox without its processed_at)."""
    from sqlalchemy import text

    out = {}
    async with db.session() as s:
        for table, columns in [("reports_site", "*"), ("reports_icb_registrations", "*"),
                               ("reports_stage_record", "*"), ("reports_stage_fact", "*"),
                               ("reports_stage_count", "*"), ("reports_activity", "*"),
                               ("reports_activity_resident", "*"),
                               ("inbox", "consumer, event_id")]:
            rows = (await s.execute(text(f"SELECT {columns} FROM {table}"))).all()
            out[table] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


async def same_as_one_replay(db, events, want) -> None:
    """``db`` holds what one replay of ``events`` in one transaction gives ``want`` (a fresh,
    migrated database); both are disposed of."""
    async with want.transaction() as s:
        await rebuild.replay(s, events, HORIZON)
        await rebuild.derive_all(s, HORIZON)
    assert await table_rows(db) == await table_rows(want)
    await db.dispose()
    await want.dispose()


def urls(tmp_path, pg_url_factory):
    def make(name: str) -> str:
        if pg_url_factory is None:
            return f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
        return pg_url_factory()
    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def make_url(request, tmp_path):
    if request.param == "sqlite":
        return urls(tmp_path, None)
    postgres = request.getfixturevalue("postgres")
    return urls(tmp_path, postgres.create_database)


async def migrated(tmp_path, url: str) -> Database:
    rt = reports_runtime(tmp_path, url)
    await upgrade(rt.db, rt.migrations)
    return rt.db


async def test_a_chunked_replay_equals_one_transaction_and_applies_duplicates_once(
        tmp_path, make_url):
    """Fresh tables: ids are deduped in memory across chunks (no inbox lookups); the tables
    equal a one-chunk replay's."""
    events = rebuild.canonical(EVENTS)
    chunks = [events[:3], events[2:7] + events[:1], events[5:] + events[4:6]]
    one, chunked = await migrated(tmp_path, make_url("one")), await migrated(
        tmp_path, make_url("chunked"))
    async with one.transaction() as s:
        assert await rebuild.replay(s, events, HORIZON) == len(EVENTS)
        await rebuild.derive_all(s, HORIZON)
    seen = []
    replayer = rebuild.Replay(HORIZON)
    assert await replayer.apply_all(chunked, chunks, progress=seen.append) == len(EVENTS)
    assert replayer.applied is not None   # the fresh-table path was taken
    assert seen == [len(c) for c in chunks]
    async with chunked.transaction() as s:
        await rebuild.derive_all(s, HORIZON)
    assert await table_rows(chunked) == await table_rows(one)
    await one.dispose()
    await chunked.dispose()


async def test_a_replay_into_tables_with_history_looks_ids_up(tmp_path, make_url):
    """Not fresh (an earlier replay or the live consumer wrote): known ids are skipped."""
    events = rebuild.canonical(EVENTS)
    db = await migrated(tmp_path, make_url("db"))
    assert await rebuild.Replay(HORIZON).apply_all(db, [events[:6]]) == 6
    replayer = rebuild.Replay(HORIZON)
    assert await replayer.apply_all(db, [events[3:9], events]) == len(EVENTS) - 6
    assert replayer.applied is None
    async with db.transaction() as s:
        await rebuild.derive_all(s, HORIZON)
    await same_as_one_replay(db, events, await migrated(tmp_path, make_url("want")))


async def test_a_rebuilt_database_keeps_consuming_without_applying_anything_twice(tmp_path):
    """The inbox holds every replayed id under the live consumer's key: redelivered, the
    history changes nothing; a new event is applied."""
    rt = reports_runtime(tmp_path)
    await upgrade(rt.db, rt.migrations)
    await rebuild.Replay(HORIZON).apply_all(rt.db, [rebuild.canonical(EVENTS)[i:i + 4]
                                                    for i in range(0, len(EVENTS), 4)])
    async with rt.db.transaction() as s:
        await rebuild.derive_all(s, HORIZON)
    before = await table_rows(rt.db)
    await deliver(rt, EVENTS, batch=5)
    assert await table_rows(rt.db) == before
    await deliver(rt, [stage("1-C", 4, date(2022, 6, 1), icb="QUY")])
    after = await table_rows(rt.db)
    assert len(after["reports_stage_record"]) == len(before["reports_stage_record"]) + 1
    assert len(after["inbox"]) == len(before["inbox"]) + 1
    await rt.db.dispose()


async def test_a_failure_commits_the_chunks_before_it_and_ends_the_replay(tmp_path,
                                                                          make_url):
    """A failure midway (here the source of chunks, as a broker read may fail) leaves
    exactly the chunks before it committed, and the replay cannot be reused (its memory of
    applied ids would be wrong)."""
    events = rebuild.canonical(EVENTS)
    good = stage("1-A", 3, date(2022, 6, 1))

    def chunks():
        yield events[:4]
        yield events[4:8]
        raise ConnectionError("the source went away")

    db = await migrated(tmp_path, make_url("db"))
    replayer = rebuild.Replay(HORIZON)
    with pytest.raises(ConnectionError):
        await replayer.apply_all(db, chunks())
    async with db.session() as s:
        assert len((await s.execute(select(INBOX))).all()) == 8
    with pytest.raises(RuntimeError, match="start a new replay"):
        await replayer.apply_all(db, [[good]])
    await db.dispose()


async def test_a_replay_stopped_midway_applies_whole_chunks_only(tmp_path, make_url):
    events = rebuild.canonical(EVENTS)
    db = await migrated(tmp_path, make_url("db"))
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    replayer = rebuild.Replay(HORIZON)
    assert await replayer.apply_all(db, [events[:3], events[3:6], events[6:]], stop=stop) == 6
    async with db.session() as s:
        from shared.inbox import INBOX
        assert len((await s.execute(select(INBOX))).all()) == 6
    assert await replayer.apply_all(db, [events]) == len(EVENTS) - 6   # and it can go on
    await db.dispose()


async def indexes(db: Database) -> list[tuple]:
    from sqlalchemy import text

    async with db.session() as s:
        return sorted(tuple(r) for r in (await s.execute(text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema()"))).all())


async def test_a_bulk_replay_rebuilds_the_keys_and_indexes_it_deferred(tmp_path, postgres):
    """PostgreSQL: the inbox's and the records' indexes are built once after the load, and
    come back exactly as the migrations made them."""
    db = await migrated(tmp_path, postgres.create_database())
    want = await indexes(db)
    events = rebuild.canonical(EVENTS)
    assert await rebuild.Replay(HORIZON).apply_all(db, [events[:5], events[5:]]) == len(EVENTS)
    assert await indexes(db) == want
    await db.dispose()


async def test_another_writers_duplicate_fails_the_bulk_replay_when_keys_come_back(
        tmp_path, postgres):
    import threading

    from tests.infra.postgres import to_asyncpg_kwargs

    url = postgres.create_database()
    db = await migrated(tmp_path, url)
    events = rebuild.canonical(EVENTS)

    async def insert_duplicate() -> None:
        import asyncpg

        conn = await asyncpg.connect(**to_asyncpg_kwargs(url))
        await conn.execute("INSERT INTO inbox VALUES ($1, $2, now())", rebuild.CONSUMER,
                           events[0].id)
        await conn.close()

    def chunks():
        yield events[:5]
        writer = threading.Thread(target=asyncio.run, args=(insert_duplicate(),))
        writer.start()
        writer.join()
        yield events[5:]

    with pytest.raises(Exception, match="unique|duplicate"):
        await rebuild.Replay(HORIZON).apply_all(db, chunks())
    await db.dispose()


async def test_a_replay_refuses_a_database_whose_keys_an_unfinished_replay_dropped(
        tmp_path, postgres):
    from sqlalchemy import text

    db = await migrated(tmp_path, postgres.create_database())
    async with db.transaction() as s:
        await s.execute(text("ALTER TABLE inbox DROP CONSTRAINT inbox_pkey"))
    with pytest.raises(RuntimeError, match="did not finish"):
        await rebuild.Replay(HORIZON).apply_all(db, [rebuild.canonical(EVENTS)])
    await db.dispose()


async def test_after_a_bulk_replay_the_facts_come_from_its_memory_with_indexes_rebuilt(
        tmp_path, monkeypatch, postgres):
    """PostgreSQL: handed the replay that filled fresh tables, the derivation reads no
    history back (its records are the table's) and builds the facts' and counts' indexes
    once; the database equals one derived from the stored history."""
    events = rebuild.canonical(EVENTS)
    db = await migrated(tmp_path, postgres.create_database())
    want_indexes = await indexes(db)
    replayer = rebuild.Replay(HORIZON)
    assert await replayer.apply_all(db, [events[:5], events[5:]]) == len(EVENTS)

    async def not_read(session):
        raise AssertionError("the history was read back")

    with monkeypatch.context() as m:
        m.setattr(rebuild, "_histories", not_read)
        # six quarters (2022/23 Q1 to the clock's 2023/24 Q2): 1-A and 1-D all six, 1-B five
        assert await rebuild.rebuild_from_history(db, HORIZON, replayer) == 17
    assert await indexes(db) == want_indexes
    await same_as_one_replay(db, events, await migrated(tmp_path, postgres.create_database()))


async def test_indexes_a_replay_left_are_built_while_the_facts_are_derived(tmp_path,
                                                                           postgres):
    """PostgreSQL, ``indexes_now=False`` (the rebuild from the broker): after the last chunk
    the inbox and the records have no keys yet (a replay refuses the database), and
    ``rebuild_from_history`` builds them beside the derivation: every index back as the
    migrations made it, the facts as from one replay."""
    events = rebuild.canonical(EVENTS)
    db = await migrated(tmp_path, postgres.create_database())
    want_indexes = await indexes(db)
    replayer = rebuild.Replay(HORIZON)
    assert await replayer.apply_all(db, [events[:5], events[5:]], indexes_now=False) == len(
        EVENTS)
    left = {i[1] for i in want_indexes} - {i[1] for i in await indexes(db)}
    assert left == {"inbox_pkey", "ix_inbox_processed_at", "reports_stage_record_pkey",
                    "ix_reports_stage_record_series"}
    with pytest.raises(RuntimeError, match="did not finish"):
        await rebuild.Replay(HORIZON).apply_all(db, [events])
    assert await rebuild.rebuild_from_history(db, HORIZON, replayer) == 17
    assert await indexes(db) == want_indexes
    await same_as_one_replay(db, events, await migrated(tmp_path, postgres.create_database()))


async def test_a_duplicate_written_before_the_indexes_are_built_fails_the_rebuild(
        tmp_path, postgres):
    """Another writer's duplicate, found when the keys a replay left come back, fails
    ``rebuild_from_history`` (the inbox stays without its key: the database is refused)."""
    from sqlalchemy import text

    events = rebuild.canonical(EVENTS)
    db = await migrated(tmp_path, postgres.create_database())
    replayer = rebuild.Replay(HORIZON)
    await replayer.apply_all(db, [events], indexes_now=False)
    async with db.transaction() as s:
        await s.execute(text("INSERT INTO inbox VALUES (:c, :e, now())"),
                        {"c": rebuild.CONSUMER, "e": events[0].id})
    with pytest.raises(Exception, match="unique|duplicate"):
        await rebuild.rebuild_from_history(db, HORIZON, replayer)
    with pytest.raises(RuntimeError, match="did not finish"):
        await rebuild.Replay(HORIZON).apply_all(db, [events])
    await db.dispose()


async def test_a_record_the_replay_did_not_write_sends_the_derivation_back_to_the_table(
        tmp_path, make_url):
    """The replay's memory is used only when it is the whole table: a record written beside
    it (here straight into the table) counts."""
    from sqlalchemy import insert

    from services.reports.facts import RECORD

    db = await migrated(tmp_path, make_url("db"))
    replayer = rebuild.Replay(HORIZON)
    await replayer.apply_all(db, [rebuild.canonical(EVENTS)])
    async with db.transaction() as s:
        await s.execute(insert(RECORD).values(
            event_id=str(uuid.uuid4()), site_id="1-A", psc_code="SW", programme="care-homes",
            tool="NEWS2", stage=6, applies_from=date(2023, 5, 1),
            reported_at=datetime(2023, 5, 2, tzinfo=UTC)))
    async with db.transaction() as s:
        await rebuild.derive_all(s, HORIZON, replayer)
    async with db.session() as s:
        got = (await s.execute(select(FACT.c.qn, FACT.c.stage).where(
            FACT.c.site_id == "1-A").order_by(FACT.c.qn))).all()
    # 2022/23 Q1..Q4 are ordinals 8088..8091; 2023/24 Q1, Q2 (the clock's) 8092, 8093
    assert [tuple(r) for r in got] == [(8088, 3), (8089, 3), (8090, 5), (8091, 5), (8092, 6),
                                       (8093, 6)]
    await db.dispose()


async def test_a_chunk_the_database_refuses_ends_a_pipelined_replay_after_the_chunks_before(
        tmp_path, postgres):
    """Fresh tables: the chunk after is prepared while one is written; when the database
    refuses a chunk (a site id longer than its column), the chunks before it stay committed
    and nothing after it is written."""
    events = rebuild.canonical(EVENTS)
    long_id = stage("1-A", 3, date(2022, 6, 1))
    long_id = long_id.model_copy(update={"data": {**long_id.data, "site_id": "x" * 33}})
    db = await migrated(tmp_path, postgres.create_database())
    with pytest.raises(Exception, match="too long"):
        await rebuild.Replay(HORIZON).apply_all(
            db, [events[:4], events[4:6] + [long_id], events[6:]])
    async with db.session() as s:
        from shared.inbox import INBOX
        assert len((await s.execute(select(INBOX))).all()) == 4
    await db.dispose()


async def test_the_rebuild_command_from_history_restores_lost_facts(tmp_path):
    """``mandet rebuild-reports`` (default ``--from history``) on the live database."""
    from services.reports import rebuild_command

    rt = reports_runtime(tmp_path)
    await upgrade(rt.db, rt.migrations)
    await deliver(rt, EVENTS)
    before = {r for r in await facts(rt.db) if r[2] <= HORIZON.current_qn()}
    async with rt.db.transaction() as s:
        await s.execute(delete(FACT))
    summary = await asyncio.to_thread(rebuild_command.run, rt.settings, source="history")
    assert summary.startswith("rebuilt ") and "from reports' history" in summary
    # the command's horizon runs to today's quarter; up to the test clock's, the same facts
    assert {r for r in await facts(rt.db) if r[2] <= HORIZON.current_qn()} == before
    await rt.db.dispose()
