"""The bus port: one interface, two adapters (memory for embedded mode, Kafka for scale).

Contract (tested by one suite against both adapters, tests/contract/test_bus.py):
- ``publish`` returns only when every record is durable (Kafka: ``acks=all``); per record it
  returns ``None`` or the exception, so a relay can retry exactly the failed ones.
- Records with the same key land on one partition and are consumed in publish order.
- A consumer group resumes from its last *committed* offset: whatever was delivered but not
  committed is delivered again (at-least-once). Consumers commit only after their effect is
  durable; the inbox turns redelivery into a no-op.
- A new group starts from the earliest retained record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Record:
    """A message to publish."""

    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A message delivered to a consumer."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())


Share = tuple[int, int]   # (i, n): the partitions numbered i modulo n
WHOLE: Share = (0, 1)


def in_share(partition: int, share: Share) -> bool:
    return partition % share[1] == share[0]


class Consumer(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def getmany(self, *, max_records: int, timeout: float) -> list[Message]:
        """Up to max_records messages, in order within each partition; [] on timeout."""

    @abstractmethod
    async def commit(self, messages: Sequence[Message]) -> None:
        """Mark everything up to and including these messages as done, per partition."""

    @abstractmethod
    async def lag(self) -> int:
        """Messages published but not yet delivered to this consumer (for /metrics)."""


class Reader(Consumer):
    """A consumer for a replay (``Bus.reader``): every partition of its share from the
    earliest retained record, no group, nothing committed."""

    @abstractmethod
    def partition_counts(self) -> dict[str, int]:
        """Partitions per topic (the topics' own names, as given to ``Bus.reader``), all of
        them, not only the share's; known once started."""

    @abstractmethod
    async def remaining(self) -> int | None:
        """Messages still to read up to where each partition ended when the reader first
        looked (at ``start``, or the partition's first fetch): a progress bar's total; None
        while the end of some partition is not known yet."""

    async def values(self, *, max_records: int, timeout: float) -> list[bytes]:
        """``getmany``'s values alone, for a replay that reads nothing else of a message (the
        Kafka reader builds no ``Message``: a tenth of a national replay's CPU)."""
        return [m.value for m in await self.getmany(max_records=max_records, timeout=timeout)]

    async def caught_up(self) -> bool:
        """Every partition read up to those ends. What was published later may be delivered
        too, but is not waited for: a replay under live traffic ends."""
        return await self.remaining() == 0


class Bus(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the bus cannot be reached (readiness)."""

    @abstractmethod
    async def publish(self, records: Sequence[Record]) -> list[BaseException | None]: ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a publish failure is the broker's (unreachable, timed out, electing a
        leader) rather than the record's: the relay retries those for as long as it takes
        and never dead-letters a row for them."""
        return isinstance(exc, (OSError, TimeoutError))

    @abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...

    @abstractmethod
    def reader(self, topics: Sequence[str], share: Share = WHOLE) -> Reader:
        """Every partition of ``topics`` from the beginning, for a replay: no group to join
        (on Kafka a group's first join took ~3 s of a national rebuild's ~9), nothing
        committed (``commit`` does nothing). ``share`` (i, n): only the partitions whose
        number is i modulo n, so n readers split the topics between them; when every topic
        has as many partitions, a key's records on every topic go to the same reader (the
        partitioner maps a key to the same partition number)."""


def last_per_partition(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    """The highest offset seen per (topic, partition)."""
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        last[tp] = max(last.get(tp, -1), m.offset)
    return last
