"""Ingest alone on SQLite or PostgreSQL, fed site events through its in-process bus."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from services.ingest.bootstrap import bootstrap, create_app
from services.ingest.models import KnownSite
from shared.auth import Role, TokenService
from shared.bus.base import Record
from shared.bus.memory import MemoryBus
from shared.events import encode, wrap
from shared.events.sites import SiteClosed, SiteRegistered
from shared.outbox import OUTBOX
from shared.settings import DEV_PLACEHOLDER, load_settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HOME = "1-5868490225"  # in QJK (Devon), PSC SW
OTHER = "1-1000000001"  # in QHL, PSC WM


def bearer(role: Role = Role.PLATFORM, sub: str = "carehq", **scope: list[str]) -> dict:
    token = TokenService(DEV_PLACEHOLDER).issue(sub, role, **scope)
    return {"Authorization": f"Bearer {token}"}


PLATFORM = bearer(sites=[HOME])


async def eventually(probe, within: float = 5.0):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__} {record.exc_text or ''}")


@dataclass
class Ingest:
    client: httpx.AsyncClient
    runtime: object
    bus: MemoryBus
    revision: dict[str, int] = field(default_factory=dict)

    async def site(self, site_id: str = HOME, icb: str = "QJK", psc: str = "SW",
                   closed_on: date | None = None) -> None:
        """Publish a site event as adoption would, and wait until ingest has applied it."""
        rev = self.revision[site_id] = self.revision.get(site_id, 0) + 1
        kind = SiteClosed if closed_on else SiteRegistered
        event = kind(site_id=site_id, revision=rev, name="Home", setting_type="care_home",
                     icb_code=icb, psc_code=psc, region="R", closed_on=closed_on)
        env = wrap(event, source="/test/adoption")
        await self.bus.publish([Record(event.TOPIC, env.subject, encode(env))])

        async def applied():
            async with self.runtime.db.session() as s:
                row = await s.get(KnownSite, site_id, populate_existing=True)
                return row is not None and row.revision == rev
        await eventually(applied)

    async def outbox(self) -> list[dict]:
        async with self.runtime.db.session() as s:
            rows = (await s.execute(select(OUTBOX.c.payload).order_by(OUTBOX.c.seq))).all()
        return [json.loads(r.payload) for r in rows]


async def _started(settings, clock):
    bus = MemoryBus()
    runtime = bootstrap(settings, bus=bus, clock=clock)
    app = create_app(runtime)
    return runtime, bus, app


@asynccontextmanager
async def running(**overrides) -> AsyncIterator[Ingest]:
    """Ingest on an in-process bus with these settings, serving, knowing the site HOME."""
    settings = load_settings("ingest", **{"relay_poll_seconds": 0.01, **overrides})
    runtime, bus, app = await _started(settings, lambda: NOW)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            harness = Ingest(client, runtime, bus)
            await harness.site()
            yield harness


@pytest.fixture(params=["sqlite", "postgres"])
async def ingest(request, tmp_path):
    extra = {"database_url": request.getfixturevalue("pg_url")} \
        if request.param == "postgres" else {}
    async with running(data_dir=tmp_path, **extra) as harness:
        yield harness


@pytest.fixture
async def sqlite_ingest(tmp_path):
    """SQLite only, for checks that do not depend on the dialect."""
    async with running(data_dir=tmp_path) as harness:
        yield harness
