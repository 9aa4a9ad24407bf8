"""An ingest API process needs PostgreSQL (or SQLite), never the broker: it writes the outbox.

So it starts, answers ready and accepts observation sets while Kafka is unreachable; the
worker's relay publishes them when the broker is back (the e2e tests cover that leg).
"""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.ingest.bootstrap import bootstrap, create_app
from shared.settings import load_settings
from tests.integration.ingest.conftest import NOW, PLATFORM, running
from tests.integration.ingest.test_native import SET

pytestmark = pytest.mark.integration


async def test_api_process_starts_is_ready_and_accepts_while_the_broker_is_down(tmp_path):
    async with running(data_dir=tmp_path):   # a worker has copied the register (HOME)
        pass
    # The API process: Kafka configured, nothing listening there.
    api_only = load_settings("ingest", data_dir=tmp_path, bus="kafka",
                             kafka_bootstrap="127.0.0.1:9", run_relay=False,
                             run_consumers=False)
    app = create_app(bootstrap(api_only, clock=lambda: NOW))
    async with LifespanManager(app, startup_timeout=20) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://test") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
            r = await client.post("/observation-sets", json=SET, headers=PLATFORM)
            assert r.status_code == 201, r.text
            assert r.json()["outcome"] == "accepted"
