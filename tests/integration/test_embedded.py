"""The embedded default end to end: SQLite files, memory bus, all services in one app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mandet.embedded import create_embedded_app
from shared.auth import Role, TokenService
from shared.settings import DEV_PLACEHOLDER

pytestmark = pytest.mark.integration

HOME = {"site_id": "1-5868490225", "name": "27 Little Week", "icb_code": "QJK", "beds": 2,
        "nursing": False}


def bearer(role: Role, **scope: list[str]) -> dict[str, str]:
    token = TokenService(DEV_PLACEHOLDER).issue("test", role, **scope)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(tmp_path):
    app = create_embedded_app(data_dir=tmp_path, relay_poll_seconds=0.01, load_care_homes=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def eventually(probe, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_site_registered_in_adoption_reaches_ingest_and_reports(client):
    admin = bearer(Role.ADMIN)
    r = await client.post("/adoption/sites", json=HOME, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["psc_code"] == "SW" and r.json()["region"] == "South West"

    platform = bearer(Role.PLATFORM, sites=[HOME["site_id"]])

    async def ingest_knows():
        got = await client.get(f"/ingest/sites/{HOME['site_id']}", headers=platform)
        return got if got.status_code == 200 else None

    known = await eventually(ingest_knows)
    assert known.json()["psc_code"] == "SW"

    async def reports_counted():
        got = await client.get("/reports/registrations", headers=bearer(Role.DASHBOARD))
        return got.json() or None

    assert await eventually(reports_counted) == [{"icb_code": "QJK", "sites_registered": 1}]


async def test_same_submission_twice_is_unchanged_and_publishes_nothing(client):
    admin = bearer(Role.ADMIN)
    assert (await client.post("/adoption/sites", json=HOME, headers=admin)).status_code == 201
    again = await client.post("/adoption/sites", json=HOME, headers=admin)
    assert again.status_code == 200 and again.headers["x-outcome"] == "unchanged"
    assert again.json()["revision"] == 1


@pytest.mark.parametrize("path", ["/adoption/sites", "/ingest/sites/1-1", "/reports/registrations",
                                  "/scoring/whoami", "/adoption/whoami"])
async def test_no_token_is_401_problem_json(client, path):
    r = await client.get(path)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["title"] == "Unauthorized"


async def test_bad_signature_is_401(client):
    forged = TokenService("another-secret").issue("x", Role.ADMIN)
    r = await client.get("/adoption/sites", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and "invalid token" in r.json()["detail"]


async def test_out_of_scope_psc_is_403(client):
    await client.post("/adoption/sites", json=HOME, headers=bearer(Role.ADMIN))
    london = bearer(Role.PSC, pscs=["UCLP"])
    r = await client.get(f"/adoption/sites/{HOME['site_id']}", headers=london)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = await client.post("/adoption/sites", json={**HOME, "name": "renamed"}, headers=london)
    assert r.status_code == 403


async def test_wrong_role_is_403(client):
    r = await client.post("/adoption/sites", json=HOME, headers=bearer(Role.DASHBOARD))
    assert r.status_code == 403
    assert "role dashboard" in r.json()["detail"]


async def test_validation_errors_name_the_field(client):
    bad = {**HOME, "site_id": "not a code", "beds": -1}
    r = await client.post("/adoption/sites", json=bad, headers=bearer(Role.ADMIN))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"site_id", "beds"}


async def test_unknown_icb_is_422_naming_icb_code(client):
    r = await client.post("/adoption/sites", json={**HOME, "icb_code": "ZZZ"},
                          headers=bearer(Role.ADMIN))
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "icb_code", "value": "ZZZ",
                                   "reason": "not a known ICB ODS code"}]


async def test_health_ready_metrics(client):
    for name in ("adoption", "ingest", "scoring", "reports"):
        assert (await client.get(f"/{name}/healthz")).json() == {"status": "ok"}
        ready = await client.get(f"/{name}/readyz")
        assert ready.json()["checks"] == {"database": "ok", "bus": "ok"}
        metrics = await client.get(f"/{name}/metrics")
        assert "http_requests_total" in metrics.text

        async def gauges(name=name):   # refreshed in the background, the first time at start
            text = (await client.get(f"/{name}/metrics")).text
            return "outbox_backlog" in text and "outbox_oldest_unpublished_seconds" in text
        await eventually(gauges)


async def test_unknown_route_is_problem_json(client):
    r = await client.get("/nowhere")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_a_withdrawn_reading_takes_back_its_score_flag_and_counts(client):
    """Across all four services: a reading entered in error, once withdrawn, no longer
    counts anywhere - not in scoring's open flags, not in reports' activity."""
    assert (await client.post("/adoption/sites", json=HOME,
                              headers=bearer(Role.ADMIN))).status_code == 201
    site = HOME["site_id"]
    platform = bearer(Role.PLATFORM, sites=[site])
    clinician = bearer(Role.CLINICIAN, sites=[site])
    # respiration 25 scores 3 (a red score), the rest 0: NEWS2 3, low-medium, flagged
    reading = {"nhs_number": "9434765919", "site_id": site,
               "taken_at": (datetime.now(UTC) - timedelta(minutes=3)).isoformat(),
               "respiration_rate": 25, "spo2": 96, "on_oxygen": False, "systolic_bp": 120,
               "pulse": 80, "consciousness": "A", "temperature": "37.0"}

    async def posted():
        got = await client.post("/ingest/observation-sets", json=reading, headers=platform)
        return got if got.status_code == 201 else None
    set_id = (await eventually(posted)).json()["id"]

    async def counts() -> tuple:
        got = await client.get("/reports/activity?level=site", headers=bearer(Role.DASHBOARD))
        rows = [r for r in got.json()["rows"] if r["code"] == site]
        if not rows:   # a site shows no activity row when nothing it recorded stands
            return (0, 0, 0, 0, 0, 0, 0)
        r = rows[-1]
        return (r["observation_sets"], r["residents_observed"], r["complete_news2"]["denominator"],
                r["complete_news2"]["numerator"], r["risk"]["low-medium"], r["red_scores"],
                r["flags"])

    async def open_flags() -> list:
        return (await client.get(f"/scoring/sites/{site}/flags", headers=clinician)).json()

    assert await eventually(lambda: _equal(counts, (1, 1, 1, 1, 1, 1, 1)))
    assert len(await open_flags()) == 1

    r = await client.delete(f"/ingest/observation-sets/{set_id}", headers=platform)
    assert r.status_code == 200 and r.json()["withdrawal_reason"] == "entered-in-error"
    assert await eventually(lambda: _equal(counts, (0, 0, 0, 0, 0, 0, 0)))
    assert await open_flags() == []


async def _equal(probe, expected) -> bool:
    return await probe() == expected
