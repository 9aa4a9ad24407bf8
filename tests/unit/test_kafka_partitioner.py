"""The relay's partition choice is aiokafka's default partitioner, bit for bit: a key must keep
its partition (and so its order) whichever code path or client version published it."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.bus.kafka import _partition_of, murmur2


def test_murmur2_equals_aiokafkas_for_every_length_and_tail():
    rnd = random.Random(4)
    for length in range(0, 130):
        for _ in range(40):
            data = rnd.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data), (length, data)


def test_partition_of_equals_the_default_partitioner():
    rnd = random.Random(5)
    keys = ["", "1-5868490225", "p1_" + "0" * 32, "l1_é", *(
        f"p1_{rnd.getrandbits(128):032x}" for _ in range(2000))]
    for partitions in ((0,), (0, 1, 2), tuple(range(6)), (3, 5, 9)):
        every = list(partitions)
        for key in keys:
            expected = DefaultPartitioner()(key.encode(), every, every)
            assert _partition_of(key, partitions) == expected, (key, partitions)
