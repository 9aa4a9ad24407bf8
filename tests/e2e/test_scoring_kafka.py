"""Scoring on the scale path: ObservationRecorded in through the broker, ScoreComputed out;
ObservationSetWithdrawn in, ScoreWithdrawn out.

Scoring runs with its own PostgreSQL database and the Kafka adapter; the tests publish an
observation (twice, as a retrying producer would) or an observation and its withdrawal on the
broker and read the scores topic.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.events import ObservationRecorded, ObservationSetWithdrawn, decode, encode, topics, wrap
from shared.settings import load_settings

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-that-is-long-enough-0123456789"


def observation(resident: str, **values: object) -> ObservationRecorded:
    taken = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    vitals = {"respiration_rate": Decimal(22), "spo2": Decimal(95), "on_oxygen": False,
              "systolic_bp": Decimal(120), "pulse": Decimal(95), "consciousness": "A",
              "temperature_c": Decimal("38.05"), **values}  # 2 + 1 + 0 + 0 + 1 + 0 + 1 = 5
    return ObservationRecorded(observation_id=uuid.uuid4(), resident=resident,
                               site_id="1-5868490225", icb_code="QJK", psc_code="SW",
                               taken_at=taken, received_at=taken, source_platform="e2e",
                               client_news2_total=5, **vitals)


@pytest.fixture
async def scoring(postgres, broker, tmp_path):
    from services.scoring.bootstrap import bootstrap

    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = load_settings("scoring", database_url=postgres.create_database(), bus="kafka",
                             env="test", kafka_bootstrap=broker.bootstrap,
                             kafka_enable_idempotence=False, kafka_partitions=3,
                             kafka_topic_prefix=prefix, jwt_secret=SECRET, data_dir=tmp_path,
                             relay_poll_seconds=0.02)
    runtime = bootstrap(settings)
    await runtime.start()
    try:
        yield runtime, prefix
    finally:
        await runtime.stop()


async def test_observation_in_score_computed_and_flag_out(scoring, broker):
    runtime, prefix = scoring
    obs = observation("p1_kafka")
    raw = encode(wrap(obs, source="/e2e/ingest"))
    runner = runtime.consumers[0]
    got = await _exchange(broker, prefix, obs.resident, [raw, raw],
                          lambda seen: len(seen) >= 2 and runner.stats.duplicates)
    by_type = {e.type: e for e in got}
    assert sorted(by_type) == ["DeteriorationFlagged", "ScoreComputed"]
    score = by_type["ScoreComputed"].data
    assert (score["total"], score["risk"], score["claim_mismatch"]) == (5, "medium", False)
    assert score["observation_id"] == str(obs.observation_id)
    assert by_type["DeteriorationFlagged"].subject == "p1_kafka"
    assert runtime.consumers[0].stats.duplicates == 1
    assert len(got) == 2  # the duplicate published nothing


async def test_withdrawal_in_score_withdrawn_out(scoring, broker):
    _, prefix = scoring
    obs = observation("p1_kafka_withdrawn")
    withdrawn = ObservationSetWithdrawn(
        observation_id=obs.observation_id, resident=obs.resident, site_id=obs.site_id,
        icb_code=obs.icb_code, psc_code=obs.psc_code, taken_at=obs.taken_at,
        source_platform=obs.source_platform, withdrawn_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        reason="entered-in-error")
    raws = [encode(wrap(e, source="/e2e/ingest")) for e in (obs, withdrawn)]
    got = await _exchange(broker, prefix, obs.resident, raws, lambda seen: len(seen) >= 3)
    assert [e.type for e in got] == ["ScoreComputed", "DeteriorationFlagged", "ScoreWithdrawn"]
    assert got[2].data == {
        "observation_id": str(obs.observation_id), "resident": "p1_kafka_withdrawn",
        "site_id": "1-5868490225", "icb_code": "QJK", "psc_code": "SW",
        "taken_at": "2024-03-01T10:00:00Z", "withdrawn_at": "2024-03-01T12:00:00Z",
        "reason": "entered-in-error", "replaced_by": None, "status": "scored", "total": 5,
        "risk": "medium", "red_score": False, "claim_mismatch": False,
        "flag_id": got[1].data["flag_id"]}


async def _exchange(broker, prefix: str, key: str, raws: list[bytes], done) -> list:
    """Publish ``raws`` on the observations topic under ``key``; read the scores topic."""
    bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=3,
                   topics=topics.ALL_TOPICS, topic_prefix=prefix)
    await bus.start()
    try:
        assert await bus.publish([Record(topics.OBSERVATIONS, key, raw) for raw in raws]) == [
            None] * len(raws)
        reader = bus.consumer(f"reader-{uuid.uuid4().hex[:6]}", [topics.SCORES])
        await reader.start()
        try:
            return await _read(reader, done)
        finally:
            await reader.stop()
    finally:
        await bus.stop()


async def _read(reader, done, within: float = 60) -> list:
    """Read the scores topic until ``done(seen)``, then drain what is already there."""
    seen: list = []
    deadline = asyncio.get_running_loop().time() + within
    while not done(seen) and asyncio.get_running_loop().time() < deadline:
        seen += [decode(m.value) for m in await reader.getmany(max_records=100, timeout=0.5)]
    seen += [decode(m.value) for m in await reader.getmany(max_records=100, timeout=0.5)]
    return seen
