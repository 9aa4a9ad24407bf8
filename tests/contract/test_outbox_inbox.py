"""One behaviour suite for the outbox, relay, inbox and consumer loop on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from shared.bus.base import Record
from shared.bus.memory import MemoryBus
from shared.consumer import ConsumerRunner
from shared.db import Database
from shared.dialect import aware
from shared.events import SiteRegistered, decode, encode, wrap
from shared.events.envelope import fast_encode
from shared.inbox import CONSUMER_DEAD, INBOX, first_time
from shared.inbox import prune as prune_inbox
from shared.migrations import upgrade
from shared.outbox import (
    COPY_FROM_ROWS,
    OUTBOX,
    OUTBOX_DEAD,
    add_encoded,
    add_events,
    utcnow,
)
from shared.relay import OutboxRelay, outbox_backlog

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "scoring" / "migrations"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def db(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    database = Database(url)
    await upgrade(database, MIGRATIONS)
    yield database
    await database.dispose()


def site(n: int, icb: str = "QJK") -> SiteRegistered:
    return SiteRegistered(site_id=f"1-{n}", revision=1, name=f"Home {n}", setting_type="care_home",
                          icb_code=icb, psc_code="SW", region="South West")


class FlakyBus(MemoryBus):
    """Fails the first ``failures`` publish calls with ``error``, then behaves."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        super().__init__(partitions=3)
        self.failures, self.error = failures, error or ConnectionError("broker unreachable")
        self.calls = 0

    async def publish(self, records: Sequence[Record]) -> list[BaseException | None]:
        self.calls += 1
        if self.calls <= self.failures:
            return [self.error for _ in records]
        return await super().publish(records)


async def count(db: Database, table) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def published_values(bus: MemoryBus, topic: str = "adoption.sites") -> list[str]:
    consumer = bus.consumer(f"probe-{uuid.uuid4().hex[:6]}", [topic])
    await consumer.start()
    got = await consumer.getmany(max_records=10_000, timeout=0.1)
    return [decode(m.value).subject for m in sorted(got, key=lambda m: (m.partition, m.offset))]


async def test_rolled_back_transaction_leaves_no_event(db):
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await add_events(session, [site(1)], source="/test")
            raise RuntimeError("handler failed after writing")
    assert await count(db, OUTBOX) == 0


async def test_relay_publishes_committed_rows_once_in_order(db):
    async with db.transaction() as session:
        await add_events(session, [site(n) for n in range(10)], source="/test")
    bus = MemoryBus(partitions=1)
    relay = OutboxRelay(db, bus, service="test", batch_size=4)
    assert [await relay.run_once() for _ in range(4)] == [4, 4, 2, 0]
    assert await published_values(bus) == [f"1-{n}" for n in range(10)]
    async with db.engine.connect() as conn:
        pending = await conn.execute(select(func.count()).select_from(OUTBOX)
                                     .where(OUTBOX.c.published_at.is_(None)))
    assert pending.scalar_one() == 0


@pytest.mark.parametrize("count", [3, COPY_FROM_ROWS])
async def test_encoded_events_are_stored_and_published_as_model_events_are(db, count):
    """``add_encoded`` (an INSERT, or from ``COPY_FROM_ROWS`` rows a COPY on PostgreSQL)
    stores the row ``add_events`` would, in order."""
    time = utcnow()
    async with db.transaction() as session:
        await add_encoded(session, [fast_encode(SiteRegistered, site(n).model_dump(mode="json"),
                                                source="/test", time=time)
                                    for n in range(count)])
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(OUTBOX).order_by(OUTBOX.c.seq))).all()
    for n, row in enumerate(rows):
        expected = wrap(site(n), source="/test", event_id=row.event_id, time=time)
        assert (row.event_type, row.topic, row.key, row.attempts) == (
            "SiteRegistered", "adoption.sites", f"1-{n}", 0)
        assert row.payload == encode(expected).decode() and row.published_at is None
    assert len(rows) == count
    bus = MemoryBus(partitions=1)
    assert await OutboxRelay(db, bus, service="test").run_once() == count
    assert await published_values(bus) == [f"1-{n}" for n in range(count)]


async def test_failed_publish_is_retried_with_backoff_then_published(db):
    async with db.transaction() as session:
        await add_events(session, [site(1), site(2)], source="/test")
    bus = FlakyBus(failures=2)
    relay = OutboxRelay(db, bus, service="test")
    deadline = asyncio.get_running_loop().time() + 10
    while relay.published_total < 2 and asyncio.get_running_loop().time() < deadline:
        await relay.run_once()
        await asyncio.sleep(0.05)
    assert relay.published_total == 2 and bus.calls == 3
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(OUTBOX.c.attempts, OUTBOX.c.last_error))).all()
    assert [r.attempts for r in rows] == [2, 2]
    assert rows[0].last_error == "ConnectionError: broker unreachable"
    assert sorted(await published_values(bus)) == ["1-1", "1-2"]


async def test_row_the_broker_refuses_is_dead_lettered_after_max_attempts_with_reason(db):
    async with db.transaction() as session:
        await add_events(session, [site(1)], source="/test")
    bus = FlakyBus(failures=1000, error=ValueError("record too large"))
    relay = OutboxRelay(db, bus, service="test", max_attempts=2)
    await relay.run_once()
    async with db.engine.begin() as conn:  # make the retry due now instead of after backoff
        await conn.execute(OUTBOX.update().values(next_attempt_at=text("created_at")))
    await relay.run_once()
    assert await count(db, OUTBOX) == 0
    async with db.engine.connect() as conn:
        dead = (await conn.execute(select(OUTBOX_DEAD))).one()
    assert dead.attempts == 2 and dead.reason == "ValueError: record too large"


async def test_an_outage_longer_than_max_attempts_dead_letters_nothing(db):
    async with db.transaction() as session:
        await add_events(session, [site(1)], source="/test")
    bus = FlakyBus(failures=8)   # unreachable for eight attempts: backoff alone would reach 51 s
    relay = OutboxRelay(db, bus, service="test", max_attempts=2)
    longest = timedelta(0)
    for _ in range(8):
        await relay.run_once()
        async with db.engine.connect() as conn:
            row = (await conn.execute(select(OUTBOX.c.next_attempt_at, OUTBOX.c.created_at))
                   ).one()
        longest = max(longest, row.next_attempt_at - row.created_at)
        async with db.engine.begin() as conn:
            await conn.execute(OUTBOX.update().values(next_attempt_at=text("created_at")))
    assert await count(db, OUTBOX_DEAD) == 0
    assert await relay.run_once() == 1 and relay.published_total == 1
    assert await published_values(bus) == ["1-1"]
    assert longest <= timedelta(seconds=6)   # retried within seconds once the broker is back


async def test_inbox_admits_an_event_once_per_consumer(db):
    event_id = uuid.uuid4()
    async with db.transaction() as session:
        assert await first_time(session, "reports", event_id) is True
        assert await first_time(session, "reports", event_id) is False
        assert await first_time(session, "ingest", event_id) is True
    assert await count(db, INBOX) == 2


async def test_inbox_prune_deletes_only_rows_past_retention_in_bounded_chunks(db):
    now, old, recent = utcnow(), [uuid.uuid4() for _ in range(7)], uuid.uuid4()
    rows = [{"consumer": "reports", "event_id": e, "processed_at": now - timedelta(days=15)}
            for e in old]
    rows.append({"consumer": "reports", "event_id": recent,
                 "processed_at": now - timedelta(days=13)})
    async with db.transaction() as session:
        await session.execute(INBOX.insert(), rows)
    assert await prune_inbox(db, timedelta(days=14), chunk=3) == 7   # chunks of 3, 3, 1
    async with db.engine.connect() as conn:
        left = (await conn.execute(select(INBOX.c.event_id))).scalars().all()
    assert left == [recent]
    async with db.transaction() as session:   # a redelivery inside retention is still a no-op
        assert await first_time(session, "reports", recent) is False
    assert await prune_inbox(db, timedelta(days=14)) == 0


async def _run_consumer(db: Database, bus: MemoryBus, handler, expected_applied: int,
                        name: str = "contract", after_commit=None) -> ConsumerRunner:
    runner = ConsumerRunner(db, bus, name=name,
                            handlers={SiteRegistered.TYPE: ("adoption.sites", handler)},
                            max_attempts=2, after_commit=after_commit)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    deadline = asyncio.get_running_loop().time() + 10
    while (runner.stats.applied + runner.stats.dead_letters < expected_applied
           and asyncio.get_running_loop().time() < deadline):
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    stop.set()
    await task
    return runner


async def test_redelivered_event_changes_nothing(db):
    bus = MemoryBus(partitions=1)
    raw = encode(wrap(site(1), source="/test"))
    await bus.publish([Record("adoption.sites", "1-1", raw), Record("adoption.sites", "1-1", raw)])
    effects: list[str] = []

    async def handler(session, envelope, event):
        effects.append(event.site_id)

    runner = await _run_consumer(db, bus, handler, expected_applied=1)
    assert effects == ["1-1"]
    assert (runner.stats.applied, runner.stats.duplicates) == (1, 1)


async def test_the_relay_is_woken_after_a_batch_that_wrote_events_and_only_then(db):
    async def quiet(session, envelope, event):   # reports: views only, nothing published
        pass

    async def publishes(session, envelope, event):   # scoring: writes an outbox event
        await add_events(session, [site(2)], source="/t")

    wakes: list[str] = []
    for name, handler in (("quiet", quiet), ("loud", publishes)):
        bus = MemoryBus(partitions=1)
        await bus.publish([Record("adoption.sites", "1-1", encode(wrap(site(1), source="/t")))])
        runner = await _run_consumer(db, bus, handler, expected_applied=1, name=name,
                                     after_commit=lambda name=name: wakes.append(name))
        assert runner.stats.applied == 1
    assert wakes == ["loud"]


class FlakyConsumerBus(MemoryBus):
    """Its consumers' first ``failures`` commits raise, as a broker going away would."""

    def __init__(self, failures: int) -> None:
        super().__init__(partitions=1)
        self.failures = failures

    def consumer(self, group, topics):
        inner, bus = super().consumer(group, topics), self

        async def commit(messages):
            if bus.failures > 0:
                bus.failures -= 1
                raise ConnectionError("broker unreachable")
            await original(messages)

        original, inner.commit = inner.commit, commit
        return inner


async def test_a_failing_bus_call_does_not_stop_the_consumer(db):
    bus = FlakyConsumerBus(failures=1)
    await bus.publish([Record("adoption.sites", "1-1", encode(wrap(site(1), source="/t")))])
    effects: list[str] = []

    async def handler(session, envelope, event):
        effects.append(event.site_id)

    runner = ConsumerRunner(db, bus, name="flaky",
                            handlers={SiteRegistered.TYPE: ("adoption.sites", handler)})
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(0.2)   # applied; its commit failed; the loop carries on
    await bus.publish([Record("adoption.sites", "1-2", encode(wrap(site(2), source="/t")))])
    deadline = asyncio.get_running_loop().time() + 10
    while runner.stats.applied < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert effects == ["1-1", "1-2"] and bus.failures == 0


async def test_poison_message_is_dead_lettered_and_the_rest_applied(db):
    bus = MemoryBus(partitions=1)
    await bus.publish([Record("adoption.sites", "1-1", encode(wrap(site(1), source="/t"))),
                       Record("adoption.sites", "1-2", encode(wrap(site(2), source="/t"))),
                       Record("adoption.sites", "1-3", encode(wrap(site(3), source="/t")))])
    effects: list[str] = []

    async def handler(session, envelope, event):
        if event.site_id == "1-2":
            raise RuntimeError("cannot apply 1-2")
        effects.append(event.site_id)

    runner = await _run_consumer(db, bus, handler, expected_applied=3)
    # The batch attempt ran 1-1 then failed on 1-2 and rolled back; each message then ran alone.
    assert effects == ["1-1", "1-1", "1-3"]
    assert runner.stats.dead_letters == 1
    async with db.engine.connect() as conn:
        dead = (await conn.execute(select(CONSUMER_DEAD))).one()
        inboxed = (await conn.execute(select(INBOX.c.event_id))).scalars().all()
    assert dead.reason == "RuntimeError: cannot apply 1-2" and dead.event_type == "SiteRegistered"
    assert len(inboxed) == 2  # the poison event's inbox row rolled back with its failed effect


async def test_unreadable_message_is_dead_lettered_not_retried(db):
    bus = MemoryBus(partitions=1)
    await bus.publish([Record("adoption.sites", "x", b"not json")])
    runner = await _run_consumer(db, bus, lambda *a: None, expected_applied=1)
    assert runner.stats.dead_letters == 1


async def test_rows_behind_a_full_window_of_waiting_rows_are_still_claimed(db):
    """The claim looks at the oldest 2 x batch due rows first; when all of them wait behind a
    backing-off row of their key, the rest of the backlog must still be published."""
    async with db.transaction() as session:
        await add_events(session, [site(1)], source="/test")
    bus = FlakyBus(failures=1)
    relay = OutboxRelay(db, bus, service="test", batch_size=1)
    assert await relay.run_once() == 1  # 1-1 revision 1 fails and backs off
    async with db.transaction() as session:
        await add_events(session, [SiteRegistered(**{**site(1).model_dump(), "revision": r})
                                   for r in (2, 3, 4)] + [site(2)], source="/test")
    assert await relay.run_once() == 1
    assert await published_values(bus) == ["1-2"]


async def test_younger_row_waits_while_an_older_row_of_its_key_backs_off(db):
    async with db.transaction() as session:
        await add_events(session, [site(1)], source="/test")
    bus = FlakyBus(failures=1)
    relay = OutboxRelay(db, bus, service="test")
    assert await relay.run_once() == 1  # fails, backs off
    async with db.transaction() as session:
        await add_events(session, [SiteRegistered(**{**site(1).model_dump(), "revision": 2}),
                                   site(2)], source="/test")
    assert await relay.run_once() == 1  # only 1-2: the younger 1-1 row waits its turn
    async with db.engine.begin() as conn:
        await conn.execute(OUTBOX.update().values(next_attempt_at=text("created_at")))
    assert await relay.run_once() == 2
    consumer = bus.consumer("probe", ["adoption.sites"])
    await consumer.start()
    got = await consumer.getmany(max_records=10, timeout=0.1)
    revisions = [decode(m.value).data["revision"] for m in got if m.key == "1-1"]
    assert revisions == [1, 2]


async def _write_model(session, event: SiteRegistered) -> list[str]:
    await add_events(session, [event], source="/test")
    return [event.site_id]


async def _write_encoded(session, event: SiteRegistered) -> list[str]:  # ingest's, scoring's
    await add_encoded(session, [fast_encode(SiteRegistered, event.model_dump(mode="json"),
                                            source="/test", time=utcnow())])
    return [event.site_id]


async def _write_copied(session, event: SiteRegistered) -> list[str]:  # a batch's: by COPY
    events = [event.model_copy(update={"site_id": f"{event.site_id}-{n}"})
              for n in range(COPY_FROM_ROWS)]
    await add_encoded(session, [fast_encode(SiteRegistered, e.model_dump(mode="json"),
                                            source="/test", time=utcnow()) for e in events])
    return [e.site_id for e in events]


@pytest.mark.integration
@pytest.mark.parametrize("write", [_write_model, _write_encoded, _write_copied])
async def test_relay_wakes_on_another_process_insert_not_its_poll(pg_url, write):
    """PostgreSQL: the outbox insert NOTIFY wakes the relay leader at once; its poll interval
    here (30 s) would otherwise be the delay. The writer is a separate engine, as the API
    process is on the scale path. ``add_encoded`` of many rows appends by COPY: the trigger
    fires too."""
    relay_db, writer_db = Database(pg_url), Database(pg_url)
    await upgrade(relay_db, MIGRATIONS)
    bus = MemoryBus(partitions=1)
    relay = OutboxRelay(relay_db, bus, service="test", poll_seconds=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while relay._lock_conn is None:            # leader, listening, now in its 30 s poll
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        async with writer_db.transaction() as session:
            written = await write(session, site(1))
        deadline = asyncio.get_running_loop().time() + 3
        while relay.published_total < 1:
            assert asyncio.get_running_loop().time() < deadline, "relay was not woken"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
        await relay_db.dispose()
        await writer_db.dispose()
    assert await published_values(bus) == written


async def test_prune_deletes_only_rows_published_before_the_retention(db):
    async with db.transaction() as session:
        await add_events(session, [site(n) for n in range(7)], source="/test")
    relay = OutboxRelay(db, MemoryBus(partitions=1), service="test", retention_hours=24)
    assert await relay.run_once() == 7
    async with db.transaction() as session:
        await add_events(session, [site(9)], source="/test")   # still pending
    async with db.engine.begin() as conn:   # rows 1-4 were published two days ago
        await conn.execute(text(
            "UPDATE outbox SET published_at = :old WHERE seq <= 4"), {"old": utcnow()
                                                                     - timedelta(days=2)})
    assert await relay.prune(chunk=3) == 4          # several chunks
    async with db.engine.connect() as conn:
        left = (await conn.execute(select(OUTBOX.c.seq, OUTBOX.c.published_at.is_(None))
                                   .order_by(OUTBOX.c.seq))).all()
    assert [(seq, pending) for seq, pending in left] == [
        (5, False), (6, False), (7, False), (8, True)]
    assert await relay.prune() == 0
    assert await OutboxRelay(db, MemoryBus(), service="test", retention_hours=0).prune() == 0


@pytest.mark.parametrize("count", [1, COPY_FROM_ROWS])
async def test_rows_written_first_in_a_transaction_roll_back_with_it(db, count):
    """``add_encoded`` reaches past SQLAlchemy to the driver (an INSERT, or a COPY), which
    begins its transaction lazily: written before any other statement, the rows must still
    belong to the transaction, not be autocommitted outside it."""
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await add_encoded(session, [fast_encode(SiteRegistered,
                                                    site(n).model_dump(mode="json"),
                                                    source="/test", time=utcnow())
                                        for n in range(count)])
            raise RuntimeError("roll back")
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(OUTBOX))).scalar() == 0


async def test_backlog_is_exact_up_to_its_cap_then_an_upper_bound_with_the_oldest_age(db):
    async with db.transaction() as session:
        await add_events(session, [site(n) for n in range(5)], source="/test")
    async with db.transaction() as session:
        rows = (await session.execute(select(OUTBOX.c.seq, OUTBOX.c.created_at)
                                      .order_by(OUTBOX.c.seq))).all()
        await session.execute(update(OUTBOX).where(OUTBOX.c.seq == rows[1].seq)
                              .values(published_at=utcnow()))   # published out of turn
    later = aware(rows[0].created_at) + timedelta(seconds=90)
    assert await outbox_backlog(db, exact_up_to=10, now=later) == (4, 0, 90.0)
    # capped: the span from the oldest unpublished row to the newest, one row too many here
    assert (await outbox_backlog(db, exact_up_to=3, now=later)).pending == 5
    async with db.transaction() as session:
        await session.execute(update(OUTBOX).values(published_at=utcnow()))
    assert await outbox_backlog(db, exact_up_to=3, now=later) == (0, 0, 0.0)
