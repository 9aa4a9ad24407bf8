"""Programmes and tools are data: a new programme takes submissions without code changes."""

from __future__ import annotations

import pytest

from tests.integration.adoption.conftest import ADMIN, CARE_HOMES, DASHBOARD, HOME, SW

pytestmark = pytest.mark.integration

WARDS = {"code": "mental-health-wards", "name": "Managing deterioration in mental-health wards",
         "tools": [{"name": "NEWS2"},
                   {"name": "Physical health observation", "also_known_as": "PHO"}]}


async def test_the_care_homes_programme_and_its_five_tools_are_seeded(client):
    [programme] = (await client.get("/programmes", headers=DASHBOARD)).json()
    assert programme == {"code": CARE_HOMES, "name": "Managing deterioration in care homes",
                         "tools": [{"name": "NEWS2 and soft signs", "also_known_as": "RESTORE2"},
                                   {"name": "Soft signs", "also_known_as": "RESTORE2 mini"},
                                   {"name": "NEWS2", "also_known_as": None},
                                   {"name": "Stop and Watch", "also_known_as": None},
                                   {"name": "Tool undecided", "also_known_as": None}]}


async def test_an_admin_adds_a_programme_and_a_tool_and_sites_report_against_it(client):
    assert (await client.post("/programmes", json=WARDS, headers=ADMIN)).status_code == 201
    assert (await client.post("/programmes", json=WARDS, headers=ADMIN)).status_code == 409
    tool = {"name": "SBARD only"}
    r = await client.post("/programmes/mental-health-wards/tools", json=tool, headers=ADMIN)
    assert r.status_code == 201
    dup = await client.post("/programmes/mental-health-wards/tools", json={"name": "pho"},
                            headers=ADMIN)
    assert dup.status_code == 409
    assert (await client.post("/programmes/nope/tools", json=tool, headers=ADMIN)).status_code \
        == 404
    body = (await client.post("/stages", headers=SW, json=[
        {"site_id": HOME, "programme": "mental-health-wards", "tool": "PHO", "stage": 2,
         "applies_from": "2023-01-01"},
        {"site_id": HOME, "programme": CARE_HOMES, "tool": "PHO", "stage": 2,
         "applies_from": "2023-01-01"}])).json()
    assert body["rows"][0]["transition"]["to_tool"] == "Physical health observation"
    assert body["rows"][1]["reason"].startswith(f"unknown tool 'PHO' for programme {CARE_HOMES}")
    history = (await client.get(f"/sites/{HOME}/stages?programme=mental-health-wards",
                                headers=SW)).json()["history"]
    assert [(h["programme"], h["stage"]) for h in history] == [("mental-health-wards", 2)]
    programmes = (await client.get("/programmes", headers=SW)).json()
    assert [t["name"] for t in programmes[1]["tools"]] == [
        "NEWS2", "Physical health observation", "SBARD only"]


@pytest.mark.parametrize("bad", [{"code": "Has Spaces", "name": "x"},
                                 {"code": "ok-code", "name": "x\x00"},
                                 {"code": "ok-code", "name": "x", "extra": 1}])
async def test_programme_input_is_validated(client, bad):
    r = await client.post("/programmes", json=bad, headers=ADMIN)
    assert r.status_code == 422
