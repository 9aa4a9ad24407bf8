"""FHIR routes answer every error as an OperationOutcome, also those raised before the route
body runs (auth, headers, unknown paths, crashes); native routes keep RFC 9457 problem+json."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mandet.embedded import create_embedded_app
from services.ingest.bootstrap import bootstrap, create_app
from shared.auth import Role
from shared.settings import load_settings
from tests.integration.ingest.conftest import PLATFORM, bearer

pytestmark = pytest.mark.integration

FHIR_JSON = "application/fhir+json"
EMPTY_BATCH = {"resourceType": "Bundle", "type": "batch", "entry": []}
AUTHORIZATION = ["http.Authorization"]


def outcome(code: str, diagnostics: str, where: list[str] | None = None) -> dict:
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if where:
        issue["expression"] = where
        issue["location"] = where
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@pytest.mark.parametrize("path", ["/fhir", "/fhir/Observation"])
async def test_no_token_is_a_401_outcome_with_www_authenticate(ingest, path):
    r = await ingest.client.post(path, json=EMPTY_BATCH)
    assert r.status_code == 401
    assert r.headers["content-type"] == FHIR_JSON
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == outcome("login", "a bearer token is required", AUTHORIZATION)


async def test_invalid_token_is_a_401_outcome(sqlite_ingest):
    r = await sqlite_ingest.client.post("/fhir/Observation", json=EMPTY_BATCH,
                                        headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401
    assert r.headers["content-type"] == FHIR_JSON
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == outcome("login", "invalid token: Not enough segments", AUTHORIZATION)


@pytest.mark.parametrize("path", ["/fhir", "/fhir/Observation"])
async def test_wrong_role_is_a_403_outcome(ingest, path):
    r = await ingest.client.post(path, json=EMPTY_BATCH, headers=bearer(Role.DASHBOARD))
    assert r.status_code == 403
    assert r.headers["content-type"] == FHIR_JSON
    assert "www-authenticate" not in r.headers
    assert r.json() == outcome("forbidden", "role dashboard may not use this route",
                               AUTHORIZATION)


async def test_bad_idempotency_key_is_a_422_outcome_naming_the_header(ingest):
    r = await ingest.client.post("/fhir", json=EMPTY_BATCH,
                                 headers={**PLATFORM, "Idempotency-Key": "has space"})
    assert r.status_code == 422
    assert r.headers["content-type"] == FHIR_JSON
    assert r.json() == outcome(
        "invalid", "Idempotency-Key: String should match pattern '^[\\x21-\\x7e]{1,200}$'",
        ["http.Idempotency-Key"])
    assert await ingest.outbox() == []


async def test_idempotency_key_conflict_names_the_header(sqlite_ingest):
    headers = {**PLATFORM, "Idempotency-Key": "fhir-conflict"}
    first = await sqlite_ingest.client.post("/fhir", json=EMPTY_BATCH, headers=headers)
    assert first.status_code == 200, first.text
    other = {**EMPTY_BATCH, "type": "transaction"}
    r = await sqlite_ingest.client.post("/fhir", json=other, headers=headers)
    assert r.status_code == 409
    assert r.headers["content-type"] == FHIR_JSON
    assert r.json() == outcome("conflict", "Idempotency-Key: reused with different content",
                               ["http.Idempotency-Key"])


async def test_wrong_method_is_an_outcome(sqlite_ingest):
    r = await sqlite_ingest.client.get("/fhir/Observation", headers=PLATFORM)
    assert r.status_code == 405
    assert r.headers["content-type"] == FHIR_JSON
    assert r.headers["allow"] == "POST"
    assert r.json() == outcome("not-supported", "Method Not Allowed")


async def test_native_route_keeps_problem_json(ingest):
    r = await ingest.client.post("/observation-sets", json={})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                        "instance": "/observation-sets", "detail": "a bearer token is required"}
    r = await ingest.client.post("/observation-sets", json={},
                                 headers={**PLATFORM, "Idempotency-Key": "has space"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert {"field": "header.Idempotency-Key", "value": "has space",
            "reason": "String should match pattern '^[\\x21-\\x7e]{1,200}$'"} in r.json()["errors"]


async def test_crash_on_a_fhir_route_is_an_outcome_without_a_trace(tmp_path, monkeypatch):
    runtime = bootstrap(load_settings("ingest", data_dir=tmp_path, relay_poll_seconds=0.01))

    async def boom(*_args, **_kwargs):
        raise RuntimeError("secret internals at line 42")

    monkeypatch.setattr(runtime, "intake", boom)
    async with LifespanManager(create_app(runtime)) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/fhir", json=EMPTY_BATCH, headers=PLATFORM)
    assert r.status_code == 500
    assert r.headers["content-type"] == FHIR_JSON
    assert r.json() == outcome(
        "exception", "The server failed to handle this request; it has been logged.")
    assert "secret internals" not in r.text and "Traceback" not in r.text


async def test_embedded_mount_matches_paths_below_the_service(tmp_path):
    """Mounted at /ingest: FHIR is recognised by the path relative to the ingest app."""
    app = create_embedded_app(data_dir=tmp_path, load_care_homes=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/ingest/fhir", json=EMPTY_BATCH, headers=bearer(Role.PSC))
            assert (r.status_code, r.headers["content-type"]) == (403, FHIR_JSON)
            assert r.json() == outcome("forbidden", "role psc may not use this route",
                                       AUTHORIZATION)
            r = await client.get("/ingest/fhir/Patient/1", headers=PLATFORM)  # no such route
            assert (r.status_code, r.headers["content-type"]) == (404, FHIR_JSON)
            assert r.json() == outcome("not-found", "Not Found")
            r = await client.get("/ingest/fhirish", headers=PLATFORM)  # not below /fhir
            assert (r.status_code, r.headers["content-type"]) == (404, "application/problem+json")
