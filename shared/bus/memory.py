"""In-process bus for the embedded default and unit tests.

It keeps Kafka's semantics that the services rely on: keyed partitions, per-group committed
offsets, redelivery of what was not committed. The log is trimmed below the lowest offset
committed by every group that ever subscribed to a topic, so a long-running embedded process
does not grow without bound; a group created later starts at the oldest retained record.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence

from shared.bus.base import (
    WHOLE,
    Bus,
    Consumer,
    Message,
    Reader,
    Record,
    Share,
    in_share,
    last_per_partition,
)


class _Partition:
    def __init__(self) -> None:
        self.base = 0  # offset of log[0]
        self.log: list[Message] = []

    @property
    def end(self) -> int:
        return self.base + len(self.log)


class MemoryBus(Bus):
    def __init__(self, partitions: int = 6) -> None:
        self.partitions = partitions
        self._topics: dict[str, list[_Partition]] = {}
        self._committed: dict[tuple[str, str, int], int] = {}  # (group, topic, p) -> next offset
        self._groups: dict[str, set[str]] = {}  # topic -> groups
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    def _topic(self, name: str) -> list[_Partition]:
        return self._topics.setdefault(name, [_Partition() for _ in range(self.partitions)])

    async def publish(self, records: Sequence[Record]) -> list[BaseException | None]:
        for r in records:
            parts = self._topic(r.topic)
            p = zlib.crc32(r.key.encode()) % self.partitions
            part = parts[p]
            part.log.append(Message(r.topic, p, part.end, r.key, r.value, r.headers))
        async with self._changed:
            self._changed.notify_all()
        return [None] * len(records)

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        for t in topics:
            self._groups.setdefault(t, set()).add(group)
        return _MemoryConsumer(self, group, tuple(topics))

    def reader(self, topics: Sequence[str], share: Share = WHOLE) -> Reader:
        """From the oldest retained record; no group, so it never holds back trimming."""
        return _MemoryReader(self, "", tuple(topics), share)

    def committed(self, group: str, topic: str, partition: int) -> int:
        parts = self._topic(topic)
        return self._committed.get((group, topic, partition), parts[partition].base)

    def _commit(self, group: str, topic: str, partition: int, next_offset: int) -> None:
        key = (group, topic, partition)
        self._committed[key] = max(self._committed.get(key, 0), next_offset)
        self._trim(topic, partition)

    def _trim(self, topic: str, partition: int) -> None:
        part = self._topic(topic)[partition]
        floor = min(self.committed(g, topic, partition) for g in self._groups[topic])
        drop = floor - part.base
        if drop > 0:
            del part.log[:drop]
            part.base = floor


class _MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, group: str, topics: tuple[str, ...]) -> None:
        self._bus, self._group, self._topics = bus, group, topics
        self._position: dict[tuple[str, int], int] = {}
        self._turn = 0

    async def start(self) -> None:
        for t in self._topics:
            for p in range(self._bus.partitions):
                self._position[(t, p)] = self._bus.committed(self._group, t, p)

    async def stop(self) -> None:
        self._position.clear()

    def _take(self, max_records: int) -> list[Message]:
        """Up to ``max_records``, starting each call at the next partition in turn (as
        Kafka's fetches share out partitions), so a busy partition starves none."""
        out: list[Message] = []
        order = list(self._position)
        self._turn = (self._turn + 1) % max(len(order), 1)
        for t, p in order[self._turn:] + order[:self._turn]:
            pos = self._position[(t, p)]
            part = self._bus._topic(t)[p]
            pos = max(pos, part.base)
            chunk = part.log[pos - part.base : pos - part.base + max_records - len(out)]
            out.extend(chunk)
            self._position[(t, p)] = pos + len(chunk)
            if len(out) >= max_records:
                break
        return out

    async def getmany(self, *, max_records: int, timeout: float) -> list[Message]:
        batch = self._take(max_records)
        if batch:
            return batch
        try:
            async with self._bus._changed:
                await asyncio.wait_for(self._bus._changed.wait(), timeout)
        except TimeoutError:
            return []
        return self._take(max_records)

    async def commit(self, messages: Sequence[Message]) -> None:
        for (t, p), offset in last_per_partition(messages).items():
            self._bus._commit(self._group, t, p, offset + 1)

    async def lag(self) -> int:
        return sum(
            self._bus._topic(t)[p].end - pos for (t, p), pos in self._position.items()
        )


class _MemoryReader(_MemoryConsumer, Reader):
    def __init__(self, bus: MemoryBus, group: str, topics: tuple[str, ...],
                 share: Share = WHOLE) -> None:
        super().__init__(bus, group, topics)
        self._share = share

    async def start(self) -> None:
        await super().start()
        self._position = {tp: at for tp, at in self._position.items()
                          if in_share(tp[1], self._share)}
        self._ends = {(t, p): self._bus._topic(t)[p].end for t, p in self._position}

    async def commit(self, messages: Sequence[Message]) -> None:
        """Nothing to commit to: a reader has no group."""

    async def remaining(self) -> int | None:
        return sum(max(0, end - self._position[tp]) for tp, end in self._ends.items())

    def partition_counts(self) -> dict[str, int]:
        return dict.fromkeys(self._topics, self._bus.partitions)
