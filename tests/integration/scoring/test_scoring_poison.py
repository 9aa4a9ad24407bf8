"""Malformed events off the bus are dead-lettered one by one; the rest of the batch is scored."""

from __future__ import annotations

import json

import pytest

from shared.bus.base import Record
from shared.events import encode, topics, wrap
from tests.integration.scoring.support import T0, observation

pytestmark = pytest.mark.integration


async def test_poison_messages_are_dead_lettered_and_the_batch_goes_on(scoring):
    good = observation("p1_poison", T0)
    bad = json.loads(encode(wrap(observation("p1_poison", T0), source="/test")))
    bad["data"]["consciousness"] = "Z"  # not on the ACVPU scale: fails validation
    newer = {**json.loads(encode(wrap(good, source="/test"))), "schemaversion": 99}
    records = [b"not json", json.dumps(bad).encode(), json.dumps(newer).encode()]
    await scoring.bus.publish([Record(topics.OBSERVATIONS, "p1_poison", raw) for raw in records])
    await scoring.publish(good)
    await scoring.scored(good)
    runner = scoring.runtime.consumers[0]
    assert runner.stats.dead_letters == 3
    assert len(scoring.of_type("ScoreComputed")) == 1
