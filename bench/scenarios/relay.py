"""(c) Outbox relay + consumer with inbox, PostgreSQL -> broker -> PostgreSQL, vs aiokafka.

Baseline: one aiokafka producer (acks=all, idempotence off as against Tansu, linger 2 ms, as
the bus adapter) sending the same encoded envelopes straight to a topic, all futures collected.
Figure: the same number of committed outbox rows published by ``OutboxRelay`` through
``KafkaBus`` and applied by a ``BatchConsumerRunner`` (the services' form: one inbox insert and
one effect insert per consumer batch, an inbox row and an effect row per event) into a
second database, timed from relay start until the consumer has applied the last event. The
consumer joins its group before the clock starts (Tansu's first join takes ~5 s). Relay and
consumer share this process's event loop (on the scale path they are two worker processes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy import insert

from bench.core import Context, Row, scenario
from bench.pgutil import messaging_tables
from bench.scenarios.common import homes
from shared.bus.kafka import KafkaBus
from shared.consumer import BatchConsumerRunner, ConsumerRunner
from shared.db import Database
from shared.dialect import insert_rows
from shared.events import Envelope, encode, topics, wrap
from shared.events.observations import ObservationRecorded
from shared.outbox import OUTBOX, outbox_values
from shared.relay import OutboxRelay

EFFECT = sa.Table("bench_effect", sa.MetaData(),
                  sa.Column("event_id", sa.Uuid, primary_key=True),
                  sa.Column("resident", sa.Text, nullable=False),
                  sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False))


async def envelopes(ctx: Context, n: int) -> list[Envelope]:
    in_play, now = await homes(ctx), datetime.now(UTC)
    out = []
    for i in range(n):
        h = in_play[i % len(in_play)]
        event = ObservationRecorded(
            observation_id=uuid.uuid4(), resident=f"p1_bench{i % 50_000:05d}", site_id=h.site_id,
            icb_code=h.icb_code, psc_code=h.psc_code, taken_at=now - timedelta(minutes=5),
            received_at=now, source_platform="bench", respiration_rate=Decimal(18),
            spo2=Decimal(96), on_oxygen=False, systolic_bp=Decimal(120), pulse=Decimal(80),
            consciousness="A", temperature_c=Decimal("37.1"))
        out.append(wrap(event, source="bench"))
    return out


async def aiokafka_rate(ctx: Context, envs: list[Envelope]) -> float:
    infra = ctx.env()
    bus = KafkaBus(infra.bootstrap, enable_idempotence=False)
    await bus.ensure_topics([f"{infra.topic_prefix}direct"])
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all",
                                enable_idempotence=False, linger_ms=2)
    await producer.start()
    try:
        values = [(e.subject.encode(), encode(e)) for e in envs]
        start = time.perf_counter()
        futures = [await producer.send(f"{infra.topic_prefix}direct", v, key=k)
                   for k, v in values]
        await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - start)
    finally:
        await producer.stop()


async def relay_rate(ctx: Context, envs: list[Envelope]) -> tuple[float, float, int]:
    """(end-to-end events/s, relay-only events/s, events applied within the time budget)."""
    infra = ctx.env()
    source, sink = Database(infra.database()), Database(infra.database())
    for db in (source, sink):
        await messaging_tables(db)
    async with sink.engine.begin() as conn:
        await conn.run_sync(EFFECT.metadata.create_all)
    bus = KafkaBus(infra.bootstrap, enable_idempotence=False, topics=[topics.OBSERVATIONS],
                   topic_prefix=f"{infra.topic_prefix}relay.")
    await bus.start()
    stop = asyncio.Event()
    runner = BatchConsumerRunner(sink, bus, name="bench.sink", batch_handler=_apply_batch,
                                 topics_by_type={ObservationRecorded.TYPE: topics.OBSERVATIONS})
    tasks = [asyncio.create_task(runner.run(stop))]
    try:
        await _joined(runner)
        await _fill_outbox(source, envs)
        relay = OutboxRelay(source, bus, service="bench")
        start = time.perf_counter()
        tasks.append(asyncio.create_task(relay.run(stop)))
        budget = ctx.size(120.0, 30.0)
        await _until(lambda: relay.published_total >= len(envs), start, budget)
        relay_s, published = time.perf_counter() - start, relay.published_total
        await _until(lambda: runner.stats.applied >= len(envs), start, budget)
        applied_s, applied = time.perf_counter() - start, runner.stats.applied
        return applied / applied_s, published / relay_s, applied
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.stop()
        await source.dispose()
        await sink.dispose()


async def _apply_batch(session, items) -> None:  # type: ignore[no-untyped-def]
    await insert_rows(session, EFFECT, [{"event_id": env.id, "resident": ev.resident,
                                         "taken_at": ev.taken_at} for env, ev in items])


async def _joined(runner: ConsumerRunner, timeout: float = 60.0) -> None:
    await asyncio.wait_for(runner.started.wait(), timeout)
    deadline = time.monotonic() + timeout
    while not await runner.consumer.assigned():  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise TimeoutError("consumer got no partitions")
        await asyncio.sleep(0.05)


async def _fill_outbox(db: Database, envs: list[Envelope]) -> None:
    now = datetime.now(UTC)
    rows = [outbox_values(e, topics.OBSERVATIONS, now) for e in envs]
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), 1000):
            await conn.execute(insert(OUTBOX), rows[i:i + 1000])


async def _until(done, start: float, budget: float) -> None:  # type: ignore[no-untyped-def]
    """Poll ``done()``; give up (the caller reports the rate reached) past ``budget`` s."""
    while not done() and time.perf_counter() - start < budget:
        await asyncio.sleep(0.01)


@scenario("relay")
async def relay(ctx: Context) -> list[Row]:
    envs = await envelopes(ctx, ctx.size(50_000, 2_000))
    direct = await aiokafka_rate(ctx, envs)
    e2e, relay_only, applied = await relay_rate(ctx, envs)
    cut = "" if applied >= len(envs) else (
        f"; STOPPED at the time budget with {applied:,} of {len(envs):,} applied")
    return [Row("outbox relay + consumer with inbox, PG -> broker -> PG", e2e, "events/s",
                direct, "aiokafka straight to broker",
                note=f"relay alone published {relay_only:,.0f} events/s; relay and consumer in "
                     f"one process here{cut}",
                details={"relay_only": relay_only, "n": len(envs), "applied": applied})]
