"""Which publish failures the relay waits out (the broker's) and which it dead-letters
(the record's): a table of aiokafka's errors, written by hand."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaConnectionError,
    KafkaTimeoutError,
    KafkaUnavailableError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotEnoughReplicasError,
    NotLeaderForPartitionError,
    ProducerClosed,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)

from shared.bus.kafka import KafkaBus
from shared.bus.memory import MemoryBus

BROKERS = [KafkaConnectionError(), KafkaTimeoutError(), KafkaUnavailableError(),
           NodeNotReadyError(), ProducerClosed(), RequestTimedOutError(),
           NotLeaderForPartitionError(), LeaderNotAvailableError(), NotEnoughReplicasError(),
           ConnectionRefusedError(), TimeoutError(), OSError("no route to host")]
RECORDS = [MessageSizeTooLargeError(), RecordTooLargeError(), InvalidTopicError(),
           CorruptRecordException(), TopicAuthorizationFailedError(), ValueError("bad key"),
           TypeError("not bytes")]


@pytest.mark.parametrize("exc", BROKERS, ids=lambda e: type(e).__name__)
def test_the_brokers_failures_are_transient(exc):
    assert KafkaBus("127.0.0.1:9").is_transient(exc) is True


@pytest.mark.parametrize("exc", RECORDS, ids=lambda e: type(e).__name__)
def test_the_records_failures_are_not(exc):
    assert KafkaBus("127.0.0.1:9").is_transient(exc) is False


def test_the_memory_bus_counts_connection_and_timeout_errors_only():
    bus = MemoryBus()
    assert [bus.is_transient(e) for e in (ConnectionError(), TimeoutError(), ValueError())] \
        == [True, True, False]
