"""Delivery proofs on the scale path: PostgreSQL + a Kafka-protocol broker.

Adoption (API, outbox, relay) -> broker -> reports (consumer, inbox). The reports view
``reports_icb_registrations`` is additive, so an event applied twice would show as a double
count: these tests would fail without the inbox.
1. walking skeleton, and the same event delivered twice changes nothing;
2. the broker paused (SIGSTOP) while requests keep being accepted loses nothing;
3. a consumer killed with SIGKILL mid-stream and restarted loses nothing and doubles nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, text

from shared.auth import Role
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.db import Database
from shared.events import SiteRegistered, encode, wrap
from shared.inbox import INBOX
from shared.settings import load_settings

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-that-is-long-enough-0123456789"


def settings_for(service: str, db_url: str, broker, prefix: str, tmp_path, **extra):
    return load_settings(service, database_url=db_url, bus="kafka", env="test",
                         kafka_bootstrap=broker.bootstrap, kafka_enable_idempotence=False,
                         kafka_partitions=3, kafka_topic_prefix=prefix, jwt_secret=SECRET,
                         kafka_session_timeout_ms=2000,
                         pseudonym_key=SECRET, data_dir=tmp_path, relay_poll_seconds=0.02,
                         **extra)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
async def adoption(postgres, broker, prefix, tmp_path):
    from services.adoption.bootstrap import bootstrap, create_app

    runtime = bootstrap(settings_for("adoption", postgres.create_database(), broker, prefix,
                                     tmp_path))
    app = create_app(runtime)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://adoption") as client:
            token = runtime.tokens.issue("e2e", Role.ADMIN)
            client.headers["Authorization"] = f"Bearer {token}"
            yield client


@pytest.fixture
def reports_url(postgres) -> str:
    return postgres.create_database()


@pytest.fixture
async def reports(reports_url, broker, prefix, tmp_path):
    from services.reports.bootstrap import bootstrap

    runtime = bootstrap(settings_for("reports", reports_url, broker, prefix, tmp_path))
    await runtime.start()
    yield runtime
    await runtime.stop()


def home(n: int) -> dict:
    return {"site_id": f"1-{900000 + n}", "name": f"Home {n}", "icb_code": "QJK"}


async def registrations(url: str) -> int:
    db = Database(url, pool_size=0)
    try:
        async with db.engine.connect() as conn:
            total = await conn.execute(text(
                "SELECT COALESCE(SUM(sites_registered), 0) FROM reports_icb_registrations"))
            return int(total.scalar_one())
    finally:
        await db.dispose()


async def inbox_rows(url: str) -> int:
    db = Database(url, pool_size=0)
    try:
        async with db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(INBOX))).scalar_one())
    finally:
        await db.dispose()


async def wait_for(probe, expected, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    value = await probe()
    while value != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        value = await probe()
    return value


async def test_site_flows_once_and_a_redelivered_event_changes_nothing(
        adoption, reports, reports_url, broker, prefix):
    r = await adoption.post("/sites", json=home(1))
    assert r.status_code == 201, r.text
    assert await wait_for(lambda: registrations(reports_url), 1) == 1

    # Deliver the very same event (same id) again, as a retrying relay would.
    event = SiteRegistered(site_id="1-900001", revision=1, name="Home 1",
                           setting_type="care_home", icb_code="QJK", psc_code="SW",
                           region="South West")
    envelope = wrap(event, source="/e2e")
    bus = KafkaBus(broker.bootstrap, enable_idempotence=False, topic_prefix=prefix)
    await bus.start()
    raw = encode(envelope)
    assert await bus.publish([Record("adoption.sites", "1-900001", raw)] * 2) == [None, None]
    await bus.stop()
    runner = reports.consumers[0]
    assert await wait_for(lambda: _const(runner.stats.duplicates), 1) == 1
    assert await registrations(reports_url) == 2  # the original, and this new event once
    assert await inbox_rows(reports_url) == 2


async def _const(value):
    return value


async def test_paused_broker_loses_nothing_that_was_accepted(adoption, reports, reports_url,
                                                             broker):
    assert (await adoption.post("/sites", json=home(0))).status_code == 201
    assert await wait_for(lambda: registrations(reports_url), 1) == 1
    broker.pause()
    try:
        for n in range(1, 21):  # requests keep being accepted: nothing publishes in a request
            r = await adoption.post("/sites", json=home(n))
            assert r.status_code == 201, r.text
        await asyncio.sleep(2.0)
        assert await registrations(reports_url) == 1
    finally:
        broker.resume()
    assert await wait_for(lambda: registrations(reports_url), 21, timeout=90) == 21
    assert await inbox_rows(reports_url) == 21


def _worker(reports_url: str, broker, prefix: str) -> subprocess.Popen:
    env = {**os.environ, "REPORTS_DATABASE_URL": reports_url, "MANDET_BUS": "kafka",
           "MANDET_ENV": "test", "MANDET_JWT_SECRET": SECRET,
           "MANDET_KAFKA_BOOTSTRAP": broker.bootstrap, "MANDET_KAFKA_PARTITIONS": "3",
           "MANDET_KAFKA_ENABLE_IDEMPOTENCE": "false", "MANDET_KAFKA_TOPIC_PREFIX": prefix,
           "MANDET_KAFKA_SESSION_TIMEOUT_MS": "2000",
           "REPORTS_CONSUMER_BATCH_SIZE": "25", "MANDET_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "mandet.cli", "worker", "reports"], env=env,
                            stdout=subprocess.DEVNULL)


async def test_consumer_killed_mid_stream_loses_and_doubles_nothing(reports_url, broker, prefix):
    total = 3000
    bus = KafkaBus(broker.bootstrap, enable_idempotence=False, partitions=3,
                   topics=["adoption.sites"], topic_prefix=prefix)
    await bus.start()
    events = [SiteRegistered(site_id=f"1-{n}", revision=1, name=f"H{n}",
                             setting_type="care_home", icb_code="QJK", psc_code="SW",
                             region="South West") for n in range(total)]
    records = [Record("adoption.sites", e.site_id, encode(wrap(e, source="/e2e")))
               for e in events]
    assert all(r is None for r in await bus.publish(records))
    await bus.stop()

    worker = _worker(reports_url, broker, prefix)
    try:
        applied = 0
        deadline = asyncio.get_running_loop().time() + 60
        while applied == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            applied = await _safe_inbox_rows(reports_url)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        killed_at = await inbox_rows(reports_url)
        assert 0 < killed_at < total, "the kill must land mid-stream"
    finally:
        if worker.poll() is None:
            worker.kill()

    worker = _worker(reports_url, broker, prefix)
    try:
        assert await wait_for(lambda: inbox_rows(reports_url), total, timeout=90) == total
        assert await registrations(reports_url) == total
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    assert worker.returncode == 0


async def _safe_inbox_rows(url: str) -> int:
    try:
        return await inbox_rows(url)
    except Exception:  # noqa: BLE001 - the worker may not have migrated yet
        return 0
