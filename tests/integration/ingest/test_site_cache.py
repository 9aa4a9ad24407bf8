"""Ingest's in-memory copy of its site table (``site_cache``), against a real database.

New sites are seen at once; a change written by another process (its site consumer) within
``site_cache_seconds``; a change applied by this process's own consumer at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from sqlalchemy import insert, update

from services.ingest.models import KnownSite
from tests.integration.ingest.conftest import HOME, bearer, eventually, running

pytestmark = pytest.mark.integration

NEW = "1-1000000777"
TTL = 0.3
CALLER = bearer(sites=[HOME, NEW])
SITES = KnownSite.__table__


def body(site_id: str) -> dict:
    return {"nhs_number": "9434765919", "site_id": site_id, "taken_at": "2026-11-22T11:30:00Z",
            "pulse": 70, "platform_set_id": str(uuid.uuid4())}


@pytest.fixture(params=["sqlite", "postgres"])
async def ingest(request, tmp_path):
    extra = {"database_url": request.getfixturevalue("pg_url")} \
        if request.param == "postgres" else {}
    async with running(data_dir=tmp_path, site_cache_seconds=TTL, **extra) as harness:
        yield harness


async def post(ingest, site_id: str) -> int:
    r = await ingest.client.post("/observation-sets", json=body(site_id), headers=CALLER)
    return r.status_code


async def snapshot_loaded(ingest) -> None:
    """A request starts a reload of the snapshot; wait until one has finished."""
    before = ingest.runtime.sites.renewals
    assert await post(ingest, HOME) == 201

    async def reloaded():
        return ingest.runtime.sites.renewals > before
    await eventually(reloaded)


async def write(ingest, statement) -> None:   # as the site consumer of another process would
    async with ingest.runtime.db.transaction() as session:
        await session.execute(statement)


async def test_a_site_added_after_the_snapshot_is_accepted_at_once(ingest):
    await snapshot_loaded(ingest)
    await write(ingest, insert(SITES).values(site_id=NEW, icb_code="QJK", psc_code="SW",
                                             revision=1))
    assert await post(ingest, NEW) == 201


async def test_a_closure_by_another_process_is_seen_within_site_cache_seconds(ingest):
    await snapshot_loaded(ingest)
    await write(ingest, update(SITES).where(SITES.c.site_id == HOME)
                .values(closed_on=date(2026, 1, 1), revision=99))
    await asyncio.sleep(TTL)
    r = await ingest.client.post("/observation-sets", json=body(HOME), headers=CALLER)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["site_id"]


async def test_a_closure_applied_by_this_process_is_seen_at_once(ingest):
    await snapshot_loaded(ingest)
    await ingest.site(HOME, closed_on=date(2026, 1, 1))
    assert await post(ingest, HOME) == 422
