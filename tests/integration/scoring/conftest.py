"""Scoring bootstrapped alone over SQLite or PostgreSQL, with a memory bus."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.scoring.bootstrap import bootstrap, create_app
from shared.bus.memory import MemoryBus
from shared.events import topics
from shared.settings import load_settings
from tests.integration.scoring.support import Harness


async def start_harness(tmp_path, database_url: str | None = None, **settings) -> tuple:
    bus = MemoryBus(partitions=3)
    overrides = {"data_dir": tmp_path, "relay_poll_seconds": 0.01, **settings}
    if database_url:
        overrides["database_url"] = database_url
    runtime = bootstrap(load_settings("scoring", **overrides), bus=bus)
    manager = LifespanManager(create_app(runtime))
    await manager.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                               base_url="http://scoring")
    reader = bus.consumer("test-reader", [topics.SCORES])
    await reader.start()
    return Harness(runtime, bus, client, reader), manager


@pytest.fixture(params=["sqlite", "postgresql"])
async def scoring(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    harness, manager = await start_harness(tmp_path, url)
    try:
        yield harness
    finally:
        await harness.client.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def sqlite_scoring(tmp_path):
    harness, manager = await start_harness(tmp_path)
    try:
        yield harness
    finally:
        await harness.client.aclose()
        await manager.__aexit__(None, None, None)
