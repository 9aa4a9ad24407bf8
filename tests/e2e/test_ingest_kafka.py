"""Ingest on the scale path: PostgreSQL + a Kafka-protocol broker.

A SiteRegistered published to the broker reaches ingest's site copy (consumer, inbox); an
observation set posted natively and one posted as FHIR leave through the outbox and the relay
as ObservationRecorded events keyed by the pseudonym, with no NHS number in any message.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.ingest.bootstrap import bootstrap, create_app
from shared.auth import Role
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.events import SiteRegistered, decode, encode, topics, wrap
from shared.settings import load_settings

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-that-is-long-enough-0123456789"
HOME = "1-5868490225"
NHS = "9434765919"


async def _until(probe, within: float = 60.0):
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if result := await probe():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_observation_recorded_reaches_the_broker_without_nhs_number(
        postgres, broker, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = load_settings(
        "ingest", database_url=postgres.create_database(), bus="kafka", env="test",
        kafka_bootstrap=broker.bootstrap, kafka_enable_idempotence=False, kafka_partitions=3,
        kafka_topic_prefix=prefix, jwt_secret=SECRET, pseudonym_key=SECRET,
        data_dir=tmp_path, relay_poll_seconds=0.02)
    bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=3,
                   topics=list(topics.ALL_TOPICS), topic_prefix=prefix)
    await bus.start()
    site = SiteRegistered(site_id=HOME, revision=1, name="27 Little Week",
                          setting_type="care_home", icb_code="QJK", psc_code="SW",
                          region="South West")
    env = wrap(site, source="/e2e")
    assert await bus.publish([Record(topics.SITES, HOME, encode(env))]) == [None]
    runtime = bootstrap(settings)
    try:
        async with LifespanManager(create_app(runtime)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://i") as client:
                token = runtime.tokens.issue("carehq", Role.PLATFORM, sites=[HOME])
                client.headers["Authorization"] = f"Bearer {token}"
                ids = await _post(client)
            messages = await _consume(bus, len(ids))
    finally:
        await bus.stop()
    events = [decode(m.value) for m in messages]
    assert {str(e.data["observation_id"]) for e in events} == set(ids)
    assert all(e.type == "ObservationRecorded" and e.subject.startswith("p1_") for e in events)
    assert all(m.key == e.subject for m, e in zip(messages, events, strict=True))
    for m in messages:
        assert NHS.encode() not in m.value and b"943 476 5919" not in m.value


async def _post(client: httpx.AsyncClient) -> list[str]:
    taken = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    body = {"nhs_number": "943 476 5919", "site_id": HOME, "taken_at": taken, "pulse": 72,
            "temperature": "37.2", "platform_set_id": "e2e-1"}

    async def site_known():
        r = await client.post("/observation-sets", json=body)
        return r if r.status_code == 201 else None
    first = await _until(site_known)  # the site arrives through the broker first
    fhir = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                       "value": NHS}},
            "effectiveDateTime": taken, "valueQuantity": {"value": 80, "code": "/min"}}
    second = await client.post("/fhir/Observation", json=fhir)
    assert second.status_code == 201, second.text
    return [first.json()["id"], second.headers["location"].rsplit("/", 1)[-1]]


async def _consume(bus: KafkaBus, expected: int) -> list:
    consumer = bus.consumer(f"check-{uuid.uuid4().hex[:6]}", [topics.OBSERVATIONS])
    await consumer.start()
    seen: list = []

    async def enough():
        seen.extend(await consumer.getmany(max_records=100, timeout=0.5))
        return len(seen) >= expected
    try:
        await _until(enough)
    finally:
        await consumer.stop()
    return seen
