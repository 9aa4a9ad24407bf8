"""One behaviour suite for every bus adapter (memory, Kafka over a real broker)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.bus.base import Bus, Message, Record
from shared.bus.kafka import KafkaBus
from shared.bus.memory import MemoryBus

PARTITIONS = 3


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.e2e)])
async def bus(request):
    topic = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        adapter: Bus = MemoryBus(partitions=PARTITIONS)
    else:
        broker = request.getfixturevalue("broker")
        adapter = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=PARTITIONS,
                           topics=[topic], session_timeout_ms=2000)
    await adapter.start()
    adapter.test_topic = topic  # type: ignore[attr-defined]
    yield adapter
    await adapter.stop()


async def drain(consumer, expected: int, timeout: float = 30.0) -> list[Message]:
    """Collect until ``expected`` messages arrived (or the deadline passed)."""
    got: list[Message] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < expected and asyncio.get_running_loop().time() < deadline:
        got.extend(await consumer.getmany(max_records=500, timeout=0.5))
    return got


async def quiet(consumer, seconds: float = 1.5) -> list[Message]:
    """Whatever arrives within ``seconds`` (used to show that nothing does)."""
    got: list[Message] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        got.extend(await consumer.getmany(max_records=500, timeout=0.3))
    return got


def records(topic: str, keys: int, per_key: int) -> list[Record]:
    return [Record(topic, f"k{k}", f"k{k}:{i}".encode()) for i in range(per_key)
            for k in range(keys)]


async def test_publish_acknowledges_every_record(bus):
    results = await bus.publish(records(bus.test_topic, 4, 5))
    assert results == [None] * 20


async def test_new_group_reads_everything_in_order_per_key(bus):
    await bus.publish(records(bus.test_topic, 5, 20))
    consumer = bus.consumer(f"g-{uuid.uuid4().hex[:6]}", [bus.test_topic])
    await consumer.start()
    got = await drain(consumer, 100)
    await consumer.stop()
    assert len(got) == 100
    for k in range(5):
        seen = [int(m.value.split(b":")[1]) for m in got if m.key == f"k{k}"]
        assert seen == list(range(20))
        assert len({m.partition for m in got if m.key == f"k{k}"}) == 1


async def test_a_reader_reads_every_partition_from_the_start_and_catches_up(bus):
    await bus.publish(records(bus.test_topic, 5, 20))
    reader = bus.reader([bus.test_topic])
    await reader.start()
    assert not await reader.caught_up()
    await bus.publish([Record(bus.test_topic, "later", b"later:0")])   # after the start
    got: list[Message] = []
    while not await reader.caught_up():
        got.extend(await reader.getmany(max_records=7, timeout=0.5))
        left = await reader.remaining()   # None until every partition's end is known
        # the record published after the start counts if its partition's first fetch saw it
        assert left is None or 100 <= len(got) + left <= 101
    assert await reader.remaining() == 0
    await reader.commit(got)   # nothing to commit to: a no-op
    await reader.stop()
    first = [m for m in got if m.key != "later"]
    assert len(first) == 100
    assert {m.partition for m in first} == set(range(PARTITIONS))
    for k in range(5):
        assert [int(m.value.split(b":")[1]) for m in got if m.key == f"k{k}"] == list(range(20))
    again = bus.reader([bus.test_topic])   # a second reader reads it all again
    await again.start()
    assert len(await drain(again, 101)) == 101
    await again.stop()


async def test_a_readers_values_are_the_messages_values_in_order_per_partition(bus):
    """``values``: what a replay reads, no ``Message`` built; same records, same order."""
    await bus.publish(records(bus.test_topic, 5, 20))
    reader = bus.reader([bus.test_topic])
    await reader.start()
    got: list[bytes] = []
    while not await reader.caught_up():
        got.extend(await reader.values(max_records=7, timeout=0.5))
    await reader.stop()
    assert sorted(got) == sorted(r.value for r in records(bus.test_topic, 5, 20))
    for k in range(5):   # a key's records are on one partition, so in publish order
        assert [v for v in got if v.startswith(f"k{k}:".encode())] == [
            f"k{k}:{i}".encode() for i in range(20)]


async def test_a_reader_of_an_empty_topic_catches_up_with_nothing(bus):
    """At once on the memory bus; on Kafka after the first fetch tells the ends."""
    reader = bus.reader([bus.test_topic])
    await reader.start()
    got: list[Message] = []
    for _ in range(20):
        if await reader.caught_up():
            break
        got.extend(await reader.getmany(max_records=10, timeout=0.3))
    assert await reader.caught_up() and got == []
    await reader.stop()


async def test_uncommitted_messages_are_delivered_again(bus):
    group = f"g-{uuid.uuid4().hex[:6]}"
    await bus.publish(records(bus.test_topic, 2, 5))
    first = bus.consumer(group, [bus.test_topic])
    await first.start()
    assert len(await drain(first, 10)) == 10
    await first.stop()  # crashed before committing
    second = bus.consumer(group, [bus.test_topic])
    await second.start()
    again = await drain(second, 10)
    await second.stop()
    assert sorted(m.value for m in again) == sorted(r.value for r in records(bus.test_topic, 2, 5))


async def test_committed_messages_are_not_delivered_again(bus):
    group = f"g-{uuid.uuid4().hex[:6]}"
    await bus.publish(records(bus.test_topic, 2, 5))
    first = bus.consumer(group, [bus.test_topic])
    await first.start()
    got = await drain(first, 10)
    await first.commit(got)
    await first.stop()
    await bus.publish([Record(bus.test_topic, "k9", b"after")])
    second = bus.consumer(group, [bus.test_topic])
    await second.start()
    later = await drain(second, 1)
    later += await quiet(second, 1.0)
    await second.stop()
    assert [m.value for m in later] == [b"after"]


async def test_each_group_gets_its_own_copy(bus):
    await bus.publish(records(bus.test_topic, 3, 3))
    a = bus.consumer(f"a-{uuid.uuid4().hex[:6]}", [bus.test_topic])
    b = bus.consumer(f"b-{uuid.uuid4().hex[:6]}", [bus.test_topic])
    await a.start()
    await b.start()
    got_a, got_b = await drain(a, 9), await drain(b, 9)
    await a.stop()
    await b.stop()
    assert len(got_a) == len(got_b) == 9


@pytest.mark.e2e
async def test_a_commit_for_partitions_lost_in_a_rebalance_is_not_fatal(broker):
    """Scaling out moves partitions; a member then committing a batch it had already applied
    must carry on consuming (the new owner re-reads it and its inbox drops the repeats)."""
    topic, group = f"rebalance-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:6]}"
    bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=PARTITIONS,
                   topics=[topic], session_timeout_ms=2000)
    await bus.start()
    first, second = bus.consumer(group, [topic]), bus.consumer(group, [topic])
    try:
        await bus.publish(records(topic, 6, 5))
        await first.start()
        applied = await drain(first, 30)
        await second.start()   # the group rebalances; first keeps only some partitions
        moved = await drain(second, 1)
        assert moved, "the new member was given no partition"
        await first.commit(applied)   # partly for partitions first no longer owns
        await bus.publish([Record(topic, f"k{k}", b"after") for k in range(6)])
        later = await drain(first, 1) + await drain(second, 1)
        assert b"after" in [m.value for m in later]
    finally:
        await first.stop()
        await second.stop()
        await bus.stop()


@pytest.fixture
async def kafka(broker):
    topics = [f"batches-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    adapter = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=PARTITIONS,
                       topics=topics, session_timeout_ms=2000)
    await adapter.start()
    adapter.test_topics = topics  # type: ignore[attr-defined]
    yield adapter
    await adapter.stop()


@pytest.mark.e2e
async def test_kafka_batches_pick_the_partition_send_would_pick(kafka):
    """publish groups records into batches itself; a key must land where aiokafka's own
    ``send`` puts it, or one resident's events could be split across partitions."""
    ours, theirs = kafka.test_topics
    keys = [f"p1_resident{i}" for i in range(40)]
    assert await kafka.publish([Record(ours, k, b"v") for k in keys]) == [None] * len(keys)
    for k in keys:
        await (await kafka.producer.send(theirs, b"v", key=k.encode()))
    consumer = kafka.consumer(f"g-{uuid.uuid4().hex[:6]}", [ours, theirs])
    await consumer.start()
    try:
        got = await drain(consumer, 2 * len(keys))
    finally:
        await consumer.stop()
    where = {(m.topic, m.key): m.partition for m in got}
    assert len(where) == 2 * len(keys)
    assert {k: where[ours, k] for k in keys} == {k: where[theirs, k] for k in keys}
    assert len({where[ours, k] for k in keys}) == PARTITIONS


@pytest.mark.e2e
async def test_kafka_many_batches_keep_order_and_a_too_large_record_fails_alone(kafka):
    topic = kafka.test_topics[0]
    big = [Record(topic, "k1", f"{i:06d}".encode() + b"x" * 1000) for i in range(1200)]
    oversized = Record(topic, "k1", b"y" * (2 * 1024 * 1024))
    results = await kafka.publish([*big[:600], oversized, *big[600:]])
    assert results[:600] == [None] * 600 and results[601:] == [None] * 600
    assert type(results[600]).__name__ == "MessageSizeTooLargeError"
    consumer = kafka.consumer(f"g-{uuid.uuid4().hex[:6]}", [topic])
    await consumer.start()
    try:
        got = await drain(consumer, len(big))
    finally:
        await consumer.stop()
    assert [m.value[:6] for m in got] == [f"{i:06d}".encode() for i in range(1200)]


async def test_readers_sharing_the_partitions_read_each_record_once_between_them(bus):
    """``share`` (i, n): partitions numbered i modulo n; n readers split a topic, a key's
    records all on one reader, in publish order; every reader knows the topic's size."""
    await bus.publish(records(bus.test_topic, 20, 10))
    shares = [bus.reader([bus.test_topic], share=(i, 2)) for i in range(2)]
    got: list[list[Message]] = []
    for reader in shares:
        await reader.start()
        assert reader.partition_counts() == {bus.test_topic: PARTITIONS}
        read: list[Message] = []
        while not await reader.caught_up():
            read.extend(await reader.getmany(max_records=7, timeout=0.5))
        await reader.stop()
        got.append(read)
    assert {m.partition for m in got[0]} == {0, 2}   # of PARTITIONS = 3
    assert {m.partition for m in got[1]} == {1}
    assert sorted(m.value for part in got for m in part) == sorted(
        r.value for r in records(bus.test_topic, 20, 10))
    for k in range(20):
        holders = [part for part in got if any(m.key == f"k{k}" for m in part)]
        assert len(holders) == 1
        assert [m.value for m in holders[0] if m.key == f"k{k}"] == [
            f"k{k}:{i}".encode() for i in range(10)]
