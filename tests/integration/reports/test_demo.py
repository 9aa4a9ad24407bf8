"""The demo command drives the embedded platform through its public APIs into the views."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mandet.demo import run
from mandet.embedded import create_embedded_app
from shared.auth import Role, TokenService
from shared.settings import DEV_PLACEHOLDER

pytestmark = pytest.mark.integration


async def test_demo_fills_the_views(tmp_path):
    # The shipped 728 homes are skipped here for speed; the demo uses whatever is registered.
    app = create_embedded_app(data_dir=tmp_path, relay_poll_seconds=0.01,
                              load_care_homes=False)
    token = TokenService(DEV_PLACEHOLDER).issue("demo", Role.ADMIN)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo", timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            for n in range(12):
                r = await client.post("/adoption/sites", json={
                    "site_id": f"1-{7000 + n}", "name": f"Demo home {n}", "icb_code": "QJK"})
                assert r.status_code == 201, r.text
            sent = await run(client, max_sites=12, residents=2, progress=False)
            assert sent["sites"] == 12 and sent["stage_rows"] > 12
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                r = await client.get("/reports/adoption", params={"level": "national"})
                rows = r.json()["rows"] if r.status_code == 200 else []
                reported = sum(sum(row["stages"][str(s)] for s in range(1, 8)) for row in rows)
                if reported or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert r.status_code == 200, r.text
            assert reported > 0 and rows[0]["denominator"] >= 12
