"""The embedded default (all services, one process, SQLite) starts with the shipped homes.

Consumers are off here: this checks adoption's side (728 homes registered, their 728
SiteRegistered published by the relay). Other services' consumption is theirs to test.
"""

from __future__ import annotations

import time

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from mandet.embedded import create_embedded_app
from shared.outbox import OUTBOX
from tests.integration.adoption.conftest import DASHBOARD, HOME, SW, eventually

pytestmark = pytest.mark.integration


async def test_embedded_default_starts_with_the_728_homes_and_publishes_them(tmp_path):
    started = time.perf_counter()
    app = create_embedded_app(data_dir=tmp_path, relay_poll_seconds=0.01, run_consumers=False)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        print(f"\nembedded start-up with 728 homes: {time.perf_counter() - started:.2f} s")
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            sites = await client.get("/adoption/sites?limit=1000", headers=DASHBOARD)
            assert len(sites.json()) == 728
            db = app.state.runtimes["adoption"].db

            async def all_published():
                async with db.session() as session:
                    query = (select(func.count()).select_from(OUTBOX)
                             .where(OUTBOX.c.published_at.is_not(None)))
                    return (await session.execute(query)).scalar_one() == 728

            assert await eventually(all_published, within=20)
            r = await client.post("/adoption/stages", headers=SW, json={
                "site_id": HOME, "tool": "RESTORE2", "stage": 3, "applies_from": "2022-04-01"})
            assert r.json()["applied"] == 1
