"""Every route of every service, called without a token, answers 401 problem+json; ingest's
FHIR routes answer 401 as a FHIR OperationOutcome instead.

Walks the real route tables, so a route added later without ``require(...)`` fails here.
"""

from __future__ import annotations

import re

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mandet.embedded import SERVICES, create_embedded_app

pytestmark = pytest.mark.integration
OPEN = {"/healthz", "/readyz", "/metrics"}
FHIR = "/ingest/fhir"  # these answer application/fhir+json OperationOutcomes
FHIR_401 = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "login", "diagnostics": "a bearer token is required",
     "expression": ["http.Authorization"], "location": ["http.Authorization"]}]}


def is_fhir(path: str) -> bool:
    return path == FHIR or path.startswith(FHIR + "/")


def unauthorized(path: str, r: httpx.Response) -> bool:
    """The 401 the path must answer: problem+json, or an OperationOutcome on FHIR routes."""
    if r.status_code != 401 or r.headers.get("www-authenticate") != "Bearer":
        return False
    if is_fhir(path):
        return r.headers["content-type"] == "application/fhir+json" and r.json() == FHIR_401
    return (r.headers["content-type"] == "application/problem+json"
            and r.json()["status"] == 401 and r.json()["instance"] == path)


def routes(app) -> list[tuple[str, str, str]]:
    """(method, path, operation) for every documented route of every mounted service."""
    out = []
    for mount in app.routes:
        if getattr(mount, "path", "").strip("/") not in SERVICES:
            continue
        for path, operations in mount.app.openapi()["paths"].items():
            if path in OPEN:
                continue
            concrete = mount.path + re.sub(r"\{[^}]+\}", "x", path)
            out.extend((m.upper(), concrete, op.get("operationId", "")) for m, op in
                       operations.items())
    return out


async def test_every_non_health_route_requires_a_token(tmp_path):
    app = create_embedded_app(data_dir=tmp_path, load_care_homes=False)
    async with LifespanManager(app) as manager:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                   base_url="http://test")
        found = routes(app)
        assert len(found) >= 5
        assert {(m, p) for m, p, _ in found if is_fhir(p)} == {
            ("POST", "/ingest/fhir"), ("POST", "/ingest/fhir/Observation")}
        failures = []
        for method, path, name in found:
            r = await client.request(method, path)
            if not unauthorized(path, r):
                failures.append(f"{method} {path} ({name}) -> {r.status_code} "
                                f"{r.headers['content-type']}")
        await client.aclose()
    assert failures == []


async def test_health_routes_stay_open(tmp_path):
    app = create_embedded_app(data_dir=tmp_path, load_care_homes=False)
    async with LifespanManager(app) as manager:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                   base_url="http://test")
        for name in SERVICES:
            for path in OPEN:
                assert (await client.get(f"/{name}{path}")).status_code == 200
        await client.aclose()
