"""The key adoption handlers on real PostgreSQL (asyncpg): bulk load, submissions, history."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from shared.outbox import OUTBOX
from tests.integration.adoption.conftest import ADMIN, HOME, SW, start_service

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_svc(pg_url, tmp_path):
    svc, manager = await start_service(tmp_path, database_url=pg_url, load_care_homes=True)
    try:
        yield svc
    finally:
        await svc.client.aclose()
        await manager.__aexit__(None, None, None)


async def count_events(svc, kind: str) -> int:
    async with svc.runtime.db.session() as session:
        return (await session.execute(select(func.count()).select_from(OUTBOX)
                                      .where(OUTBOX.c.event_type == kind))).scalar_one()


async def test_homes_load_through_the_bulk_handler_on_postgres(pg_svc):
    assert pg_svc.runtime.db.dialect == "postgresql"
    assert await count_events(pg_svc, "SiteRegistered") == 728
    csv = (b"location_id,name,icb_ods_code,number_of_beds,care_home_with_nursing\n"
           b"1-5868490225,27 Little Week,QJK,9,N\n1-55,New,QSL,3,Y\n1-56,Bad,ZZZ,3,Y\n")
    r = await pg_svc.client.post("/sites/load", headers=ADMIN,
                                 files={"file": ("s.csv", io.BytesIO(csv), "text/csv")})
    body = r.json()
    assert (body["created"], body["updated"], body["rejected"]) == (1, 1, 1)
    assert await count_events(pg_svc, "SiteUpdated") == 1


async def test_submissions_corrections_and_flags_on_postgres(pg_svc):
    c = pg_svc.client
    r = await c.post("/stages", headers=SW, json=[
        {"site_id": HOME, "tool": "RESTORE2", "stage": 5, "applies_from": "2022-04-01"},
        {"site_id": HOME, "tool": "RESTORE2", "stage": 4, "applies_from": "2022-10-01"},
        {"site_id": HOME, "tool": "RESTORE2", "stage": 7, "applies_from": "2023-01-01"},
        {"site_id": HOME, "tool": "NEWS2", "stage": 3, "applies_from": "2021-06-01"},
        {"site_id": HOME, "stage": 12, "applies_from": "2021-06-01"},
    ])
    flags = [r["transition"]["flags"] if r["transition"] else r["reason"]
             for r in r.json()["rows"]]
    assert flags == [[], ["regression"], ["sustainment not evidenced"], ["correction"],
                     "stage must be 0-7, got 12"]
    history = (await c.get(f"/sites/{HOME}/stages", headers=SW)).json()["history"]
    assert [h["applies_from"] for h in history] == ["2021-06-01", "2022-04-01", "2022-10-01",
                                                    "2023-01-01"]
    assert history[0]["reported_at"].endswith("Z")  # aware, UTC
    assert await count_events(pg_svc, "StageChanged") == 4
    async with pg_svc.runtime.db.session() as session:
        keys = (await session.execute(select(OUTBOX.c.key, OUTBOX.c.payload)
                                      .where(OUTBOX.c.event_type == "StageChanged")
                                      .order_by(OUTBOX.c.seq))).all()   # heap order moves
    assert {k for k, _ in keys} == {HOME}
    assert [json.loads(p)["data"]["is_correction"] for _, p in keys] == [False] * 3 + [True]
    flagged = (await c.get("/stages/flags?flag=correction", headers=SW)).json()
    assert [f["applies_from"] for f in flagged] == ["2021-06-01"]


async def test_template_round_trip_on_postgres(pg_svc):
    c = pg_svc.client
    await c.post("/stages", headers=SW, json={"site_id": HOME, "tool": "NEWS2", "stage": 2,
                                              "applies_from": "2022-05-05"})
    data = (await c.get("/pscs/SW/template?quarter=2022/23 Q1", headers=SW)).content
    r = await c.post("/stages/upload?dry_run=true", headers=SW,
                     files={"file": ("r.csv", io.BytesIO(data), "text/csv")})
    assert (r.json()["unchanged"], r.json()["applied"], r.json()["rejected"]) == (728, 0, 0)
