"""Adoption on its own over SQLite (fast), plus helpers shared by its integration tests."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.adoption.bootstrap import bootstrap, create_app
from shared.auth import Role, TokenService
from shared.bus.memory import MemoryBus
from shared.settings import DEV_PLACEHOLDER, load_settings

HOME = "1-5868490225"  # 27 Little Week, Devon (QJK), South West PSC
OTHER_HOME = "1-2416239011"  # 42 East Wonford Hill, Devon
CARE_HOMES = "managing-deterioration-care-homes"


def bearer(role: Role | str, sub: str = "tester", **scope: list[str]) -> dict[str, str]:
    token = TokenService(DEV_PLACEHOLDER).issue(sub, role, **scope)
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(Role.ADMIN, sub="admin-1")
SW = bearer(Role.PSC, sub="psc-sw-user", pscs=["SW"])
LONDON = bearer(Role.PSC, sub="psc-london", pscs=["UCLP"])
DASHBOARD = bearer(Role.DASHBOARD)


async def eventually(probe, within: float = 5.0):
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Service:
    """A running adoption service: its HTTP client, runtime and bus."""

    def __init__(self, client: httpx.AsyncClient, runtime, bus: MemoryBus) -> None:
        self.client, self.runtime, self.bus = client, runtime, bus


async def start_service(tmp_path, **overrides):
    bus = MemoryBus(partitions=2)
    settings = load_settings("adoption", data_dir=tmp_path, relay_poll_seconds=0.01, **overrides)
    runtime = bootstrap(settings, bus=bus)
    app = create_app(runtime)
    manager = LifespanManager(app)
    await manager.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                               base_url="http://test")
    return Service(client, runtime, bus), manager


@pytest.fixture
async def svc(tmp_path):
    service, manager = await start_service(tmp_path)
    try:
        yield service
    finally:
        await service.client.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def client(svc):
    return svc.client
