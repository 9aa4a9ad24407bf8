"""Route x role x scope: who may call what, and what an out-of-scope caller gets.

In scope means a token naming PSC SW (the shipped Devon and Somerset homes); out of scope names
UCLP. Writes that carry rows (bulk site load, stage submissions) answer 200 with the foreign
rows rejected; everything else out of scope is 403. Dashboard reads everything, writes nothing.
"""

from __future__ import annotations

import io
import itertools

import pytest

from shared.auth import Role
from tests.integration.adoption.conftest import HOME, OTHER_HOME, bearer, start_service

pytestmark = pytest.mark.integration

OK, FORBIDDEN, REJECTED, EMPTY = "ok", "403", "rows rejected", "empty"
_n = itertools.count()


def _site_body() -> dict:
    return {"json": {"site_id": HOME, "name": "27 Little Week", "icb_code": "QJK"}}


def _load_body() -> dict:
    csv = (b"location_id,name,icb_ods_code\n" + f"1-77{next(_n)},Home,QJK\n".encode())
    return {"files": {"file": ("s.csv", io.BytesIO(csv), "text/csv")}}


def _stage_body() -> dict:
    return {"json": {"site_id": HOME, "stage": 1 + next(_n) % 6, "applies_from": "2022-04-01"}}


def _upload_body() -> dict:
    csv = f"site_id,stage,applies_from\n{HOME},{1 + next(_n) % 6},2022-04-01\n".encode()
    return {"files": {"file": ("r.csv", io.BytesIO(csv), "text/csv")}}


def _programme_body() -> dict:
    return {"json": {"code": f"programme-{next(_n)}", "name": "P", "tools": []}}


def _tool_body() -> dict:
    return {"json": {"name": f"tool {next(_n)}"}}


# (method, path, body, psc in scope, psc out of scope, dashboard)
ROUTES = [
    ("GET", "/sites", None, OK, EMPTY, OK),
    ("GET", f"/sites/{HOME}", None, OK, FORBIDDEN, OK),
    ("POST", "/sites", _site_body, OK, FORBIDDEN, FORBIDDEN),
    ("POST", "/sites/load", _load_body, OK, REJECTED, FORBIDDEN),
    ("POST", "/stages", _stage_body, OK, REJECTED, FORBIDDEN),
    ("POST", "/stages/upload", _upload_body, OK, REJECTED, FORBIDDEN),
    ("GET", f"/sites/{HOME}/stages", None, OK, FORBIDDEN, OK),
    ("GET", "/pscs/SW/positions", None, OK, FORBIDDEN, OK),
    ("GET", "/pscs/SW/template", None, OK, FORBIDDEN, OK),
    ("GET", "/stages/flags", None, OK, EMPTY, OK),
    ("GET", "/programmes", None, OK, OK, OK),
    ("POST", "/programmes", _programme_body, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/programmes/managing-deterioration-care-homes/tools", _tool_body,
     FORBIDDEN, FORBIDDEN, FORBIDDEN),
]
SCOPES = {"in": ["SW"], "out": ["UCLP"]}


def expected(role: Role, scope: str, route: tuple) -> str:
    if role is Role.ADMIN:
        return OK
    if role in (Role.PLATFORM, Role.CLINICIAN):
        return FORBIDDEN
    if role is Role.DASHBOARD:
        return route[5]
    return route[3] if scope == "in" else route[4]


CASES = [pytest.param(route, role, scope, id=f"{route[0]} {route[1]} {role} {scope}")
         for route in ROUTES for role in Role for scope in SCOPES]


@pytest.fixture(scope="module")
async def shared_client(tmp_path_factory):
    svc, manager = await start_service(tmp_path_factory.mktemp("matrix"))
    regression = [{"site_id": OTHER_HOME, "stage": 5, "applies_from": "2021-01-01"},
                  {"site_id": OTHER_HOME, "stage": 3, "applies_from": "2021-06-01"}]
    seeded = await svc.client.post("/stages", json=regression, headers=bearer(Role.ADMIN))
    assert seeded.json()["applied"] == 2  # so the flags route has something in SW to show
    try:
        yield svc.client
    finally:
        await manager.__aexit__(None, None, None)


def outcome(response) -> str:
    if response.status_code == 403:
        assert response.headers["content-type"] == "application/problem+json"
        return FORBIDDEN
    assert response.status_code in (200, 201), response.text
    body = response.json() if "json" in response.headers["content-type"] else None
    if isinstance(body, dict) and "rows" in body:
        return REJECTED if body["rejected"] == len(body["rows"]) else OK
    return EMPTY if body == [] else OK


@pytest.mark.parametrize(("route", "role", "scope"), CASES)
async def test_access(shared_client, route, role, scope):
    method, path, body, *_ = route
    headers = bearer(role, pscs=SCOPES[scope])
    kwargs = body() if body else {}
    response = await shared_client.request(method, path, headers=headers, **kwargs)
    assert outcome(response) == expected(role, scope, route)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
async def test_no_token_is_401_everywhere(shared_client, route):
    response = await shared_client.request(route[0], route[1])
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
