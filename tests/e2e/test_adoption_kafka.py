"""Adoption on the scale path: PostgreSQL + a Kafka-protocol broker.

Stage submissions become ``StageChanged`` events in the outbox; the relay publishes them to
``adoption.stages`` keyed by site id. Read back with a plain aiokafka consumer (no group, so no
~5 s group join), the events carry the transition, the correction flag and the reporter.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from asgi_lifespan import LifespanManager

from services.adoption.bootstrap import bootstrap, create_app
from shared.auth import Role
from shared.settings import load_settings

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-that-is-long-enough-0123456789"
HOME, OTHER = "1-5868490225", "1-2416239011"


@pytest.fixture
async def adoption(pg_url, broker, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = load_settings("adoption", database_url=pg_url, bus="kafka", env="test",
                             kafka_bootstrap=broker.bootstrap, kafka_enable_idempotence=False,
                             kafka_partitions=3, kafka_topic_prefix=prefix, jwt_secret=SECRET,
                             data_dir=tmp_path, relay_poll_seconds=0.02, load_care_homes=True)
    runtime = bootstrap(settings)
    app = create_app(runtime)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://adoption") as client:
            token = runtime.tokens.issue("psc-sw-user", Role.PSC, pscs=["SW"])
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, prefix


async def read(consumer: AIOKafkaConsumer, count: int, within: float = 30.0) -> list:
    got: list = []
    deadline = asyncio.get_running_loop().time() + within
    while len(got) < count and asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            got.extend(records)
    return got


async def test_stage_changes_arrive_on_the_broker_keyed_by_site(adoption, broker):
    client, prefix = adoption
    r = await client.post("/stages", json=[
        {"site_id": HOME, "tool": "RESTORE2", "stage": 4, "applies_from": "2023-01-01"},
        {"site_id": HOME, "tool": "RESTORE2", "stage": 3, "applies_from": "2022-06-01"},
        {"site_id": OTHER, "tool": "NEWS2", "stage": 5, "applies_from": "2022-09-01"},
        {"site_id": OTHER, "tool": "NEWS2", "stage": 5, "applies_from": "2022-12-01"},
    ])
    assert [row["outcome"] for row in r.json()["rows"]] == [
        "applied", "applied", "applied", "unchanged"]
    consumer = AIOKafkaConsumer(prefix + "adoption.stages", bootstrap_servers=broker.bootstrap,
                                group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        records = await read(consumer, 3)
    finally:
        await consumer.stop()
    assert len(records) == 3
    events = [(rec.key.decode(), json.loads(rec.value)) for rec in records]
    assert all(env["type"] == "StageChanged" and env["subject"] == key for key, env in events)
    by_site: dict[str, list[dict]] = {}
    for key, env in events:
        by_site.setdefault(key, []).append(env["data"])
    assert len({rec.partition for rec in records if rec.key.decode() == HOME}) == 1
    assert [(d["from_stage"], d["to_stage"], d["is_correction"], d["flags"], d["reporter"])
            for d in by_site[HOME]] == [(0, 4, False, [], "psc-sw-user"),
                                        (0, 3, True, ["correction"], "psc-sw-user")]
    assert [(d["to_tool"], d["to_stage"], d["psc_code"], d["icb_code"])
            for d in by_site[OTHER]] == [("NEWS2", 5, "SW", "QJK")]
