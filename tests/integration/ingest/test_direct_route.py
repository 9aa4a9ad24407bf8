"""POST /observation-sets is served without routing (``shared.api.DirectRoutes``); it must
answer exactly as the routed app does: same status, headers and body, errors included."""

from __future__ import annotations

import httpx
import pytest

from services.ingest import api
from shared.api import DirectRoutes, direct_routes, service_app
from shared.auth import Role
from tests.integration.ingest.conftest import PLATFORM, bearer, running

pytestmark = pytest.mark.integration

SET = {"nhs_number": "9434765919", "site_id": "1-5868490225",
       "taken_at": "2026-11-22T11:30:00Z", "respiration_rate": 18, "spo2": 97,
       "on_oxygen": False, "systolic_bp": 128, "pulse": 72, "consciousness": "A",
       "temperature": "36.55"}
JSON = {"content-type": "application/json"}
LIMIT = 2_000

# (name, headers, body): every way the route can answer, none of which stores anything.
REFUSED = [
    ("no token", JSON, b"{}"),
    ("not a bearer token", {**JSON, "Authorization": "Basic abc"}, b"{}"),
    ("a role that may not write", {**JSON, **bearer(Role.DASHBOARD)}, b"{}"),
    ("broken JSON", {**JSON, **PLATFORM}, b'{"site_id": '),
    ("not JSON", {"content-type": "text/plain", **PLATFORM}, b"hello"),
    ("no body", {**JSON, **PLATFORM}, b""),
    ("a field out of range", {**JSON, **PLATFORM},
     httpx.Request("POST", "/", json={**SET, "pulse": 400}).content),
    ("a bad Idempotency-Key", {**JSON, **PLATFORM, "Idempotency-Key": "a b"},
     httpx.Request("POST", "/", json=SET).content),
    ("a site out of scope", {**JSON, **bearer(sites=["1-1000000001"])},
     httpx.Request("POST", "/", json=SET).content),
    ("a body over the limit", {**JSON, **PLATFORM}, b'{"x": "' + b"a" * LIMIT + b'"}'),
]


@pytest.fixture
async def both(tmp_path):
    """The ingest app (direct) and a routed twin on the same runtime."""
    async with running(data_dir=tmp_path, max_body_bytes=LIMIT) as harness:
        routed = service_app(harness.runtime, [api.router(harness.runtime)], title="routed",
                             manage_runtime=False)
        assert not any(m.cls is DirectRoutes for m in routed.user_middleware)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=routed),
                                     base_url="http://test") as twin:
            yield harness, twin


def test_the_ingest_app_serves_the_single_set_route_directly():
    from services.ingest.bootstrap import bootstrap, create_app
    app = create_app(bootstrap())
    (direct,) = [m for m in app.user_middleware if m.cls is DirectRoutes]
    assert set(direct.kwargs["routes"]) == {("POST", "/observation-sets")}


def test_a_route_that_solves_dependencies_cannot_be_direct():
    with pytest.raises(RuntimeError, match="cannot be direct"):
        direct_routes([api.router(object())], [("GET", "/observation-sets/{set_id}")])
    with pytest.raises(RuntimeError, match="not declared"):
        direct_routes([api.router(object())], [("POST", "/nowhere")])


@pytest.mark.parametrize(("name", "headers", "body"), REFUSED, ids=[c[0] for c in REFUSED])
async def test_a_refusal_is_the_routed_apps_answer(both, name, headers, body):
    ingest, twin = both
    direct = await ingest.client.post("/observation-sets", content=body, headers=headers)
    routed = await twin.post("/observation-sets", content=body, headers=headers)
    assert direct.status_code == routed.status_code >= 400, (name, direct.text)
    assert direct.content == routed.content
    assert _headers(direct) == _headers(routed)
    assert await ingest.outbox() == []


async def test_accepted_and_duplicate_answers_match_the_routed_app(both):
    ingest, twin = both
    for client, set_id in ((ingest.client, "direct-1"), (twin, "routed-1")):
        body = {**SET, "platform_set_id": set_id}
        first = await client.post("/observation-sets", json=body, headers=PLATFORM)
        again = await client.post("/observation-sets", json=body, headers=PLATFORM)
        keyed = await client.post(
            "/observation-sets", json={**body, "platform_set_id": f"{set_id}k"},
            headers={**PLATFORM, "Idempotency-Key": f"key-{set_id}"})
        assert (first.status_code, again.status_code, keyed.status_code) == (201, 200, 201)
        assert again.json() == {"id": first.json()["id"], "outcome": "duplicate"}
        assert _headers(first) == {"content-type": "application/json", "x-request-id": True}
    assert len(await ingest.outbox()) == 4


async def test_direct_requests_are_counted_under_the_route_template(both):
    ingest, _ = both
    await ingest.client.post("/observation-sets", json={**SET, "platform_set_id": "m-1"},
                             headers=PLATFORM)
    metrics = (await ingest.client.get("/metrics")).text
    assert 'route="/observation-sets",status="201"' in metrics


def _headers(response: httpx.Response) -> dict[str, object]:
    """Content type, and whether a request id was given (ids differ per request)."""
    return {"content-type": response.headers.get("content-type"),
            "x-request-id": bool(response.headers.get("x-request-id"))}
