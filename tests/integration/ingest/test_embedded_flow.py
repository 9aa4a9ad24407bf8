"""The embedded app: a site registered in adoption becomes postable in ingest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mandet.embedded import create_embedded_app
from shared.auth import Role
from tests.integration.ingest.conftest import HOME, bearer, eventually

pytestmark = pytest.mark.integration


async def test_adoption_site_then_observation_then_read_back(tmp_path):
    app = create_embedded_app(data_dir=tmp_path, relay_poll_seconds=0.01)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            site = {"site_id": HOME, "name": "27 Little Week", "icb_code": "QJK"}
            r = await client.post("/adoption/sites", json=site, headers=bearer(Role.ADMIN))
            assert r.status_code in (200, 201), r.text  # adoption may ship it as reference data
            platform = bearer(sites=[HOME])
            taken = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
            body = {"nhs_number": "9434765919", "site_id": HOME, "taken_at": taken,
                    "pulse": 80, "spo2": 95}

            async def posted():
                got = await client.post("/ingest/observation-sets", json=body, headers=platform)
                return got if got.status_code == 201 else None
            created = await eventually(posted, within=30)  # 728 reference homes flow first
            got = await client.get(f"/ingest/observation-sets/{created.json()['id']}",
                                   headers=platform)
            assert got.status_code == 200 and got.json()["psc_code"] == "SW"
            assert "9434765919" not in got.text
