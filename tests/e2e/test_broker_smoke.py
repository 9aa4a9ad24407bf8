"""Smoke test of the Kafka-protocol broker test infrastructure (tests/infra/broker.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from tests.infra.broker import Broker, create_topic, stop_consumer

pytestmark = pytest.mark.e2e

N_KEYS = 7


def _consumer(broker: Broker, topic: str, group: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1500,
    )


def _producer(broker: Broker) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False
    )


def _msg(i: int) -> tuple[bytes, bytes]:
    key = f"key-{i % N_KEYS}"
    return key.encode(), f"{key}:{i}".encode()


async def _wait_assigned(consumer: AIOKafkaConsumer, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not consumer.assignment():
        assert time.monotonic() < deadline, "consumer group join timed out"
        await asyncio.sleep(0.02)


async def _drain(
    consumer: AIOKafkaConsumer, n: int, within_s: float = 20.0
) -> list[ConsumerRecord]:
    out: list[ConsumerRecord] = []
    deadline = time.monotonic() + within_s
    while len(out) < n:
        assert time.monotonic() < deadline, f"only {len(out)}/{n} messages arrived"
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            out.extend(records)
    return out


def _assert_per_key_order(records: list[ConsumerRecord], n: int) -> None:
    seen: dict[bytes, list[int]] = defaultdict(list)
    for r in records:
        key, seq = r.value.decode().split(":")
        assert r.key == key.encode()
        seen[r.key].append(int(seq))
    assert sorted(s for seqs in seen.values() for s in seqs) == list(range(n)), "lost/dup messages"
    for key, seqs in seen.items():
        assert seqs == sorted(seqs), f"out of order for {key!r}: {seqs}"


async def test_produce_consume_commit(broker: Broker) -> None:
    topic, group = f"smoke-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    assert await create_topic(broker.bootstrap, topic, partitions=3)

    producer = _producer(broker)
    await producer.start()
    try:
        assert await producer.partitions_for(topic) == {0, 1, 2}
        futures = [await producer.send(topic, v, key=k) for k, v in map(_msg, range(100))]
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    assert len({m.partition for m in metas}) > 1, "keys should spread over partitions"

    consumer = _consumer(broker, topic, group)
    await consumer.start()
    try:
        await _wait_assigned(consumer)
        records = await _drain(consumer, 100)
        _assert_per_key_order(records, 100)
        await consumer.commit()
        # NB: don't use consumer.end_offsets() here: Tansu answers ListOffsets(latest)
        # with <base offset of the last batch> + 1, wrong for multi-record batches.
        end = {tp: consumer.highwater(tp) for tp in consumer.assignment()}
        for r in records:
            assert r.offset < end[TopicPartition(r.topic, r.partition)]
        assert sum(end.values()) == 100
        for tp in consumer.assignment():
            assert await consumer.committed(tp) == end[tp]
    finally:
        await stop_consumer(consumer)

    # same group again: committed offsets mean nothing new is delivered
    second = _consumer(broker, topic, group)
    t0 = time.monotonic()
    await second.start()
    try:
        await _wait_assigned(second)
        assert time.monotonic() - t0 < 8, "rejoin waited for a ghost member's session timeout"
        batch = await second.getmany(timeout_ms=1000)
        assert sum(len(v) for v in batch.values()) == 0
        for tp in second.assignment():
            assert await second.position(tp) == end[tp]
    finally:
        await stop_consumer(second)


async def test_messages_survive_broker_pause(broker: Broker) -> None:
    if broker.external:
        pytest.skip("cannot pause an external broker")
    topic, group = f"pause-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    await create_topic(broker.bootstrap, topic, partitions=3)

    consumer = _consumer(broker, topic, group)
    producer = _producer(broker)
    await asyncio.gather(consumer.start(), producer.start())
    try:
        await _wait_assigned(consumer)
        before = [await producer.send(topic, v, key=k) for k, v in map(_msg, range(50))]
        await asyncio.gather(*before)

        with broker.outage():
            during = [await producer.send(topic, v, key=k) for k, v in map(_msg, range(50, 100))]
            await asyncio.sleep(2.0)
            done = [(i, f.exception() or f.result()) for i, f in enumerate(during) if f.done()]
            assert not done, f"acked while the broker was stopped? {done[:3]}"

        await asyncio.wait_for(asyncio.gather(*during), 30)
        records = await _drain(consumer, 100, within_s=30)
        _assert_per_key_order(records, 100)
        await consumer.commit()
    finally:
        if broker.paused:
            broker.resume()
        await producer.stop()
        await stop_consumer(consumer)
