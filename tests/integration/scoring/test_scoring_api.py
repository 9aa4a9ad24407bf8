"""Scoring's routes: the access matrix, the calculator, the catalogue, the area's wording."""

from __future__ import annotations

import pytest

from shared.auth import Role
from tests.integration.scoring.conftest import start_harness
from tests.integration.scoring.support import ICB, OTHER_SITE, PSC, SITE, T0, observation

pytestmark = pytest.mark.integration
P, C, PSC_, D, A = Role.PLATFORM, Role.CLINICIAN, Role.PSC, Role.DASHBOARD, Role.ADMIN
IN_SCOPE = ({"sites": [SITE]}, {"icbs": [ICB]}, {"pscs": [PSC]})
OUT_OF_SCOPE = {"sites": [OTHER_SITE], "icbs": ["QHL"], "pscs": ["WM"]}


@pytest.fixture
async def seeded(sqlite_scoring):
    """One resident with one flagged reading at SITE."""
    obs = observation("p1_matrix", T0, consciousness="C")
    await sqlite_scoring.submit(obs, events=2)
    [flag] = sqlite_scoring.of_type("DeteriorationFlagged", obs.observation_id)
    return sqlite_scoring, flag.data["flag_id"]


def routes(flag_id: str) -> list[tuple[str, str, dict, set[Role], bool]]:
    """(method, path, kwargs, roles allowed, scope-checked)."""
    scale = "/residents/p1_matrix/spo2-scale"
    return [
        ("GET", "/residents/p1_matrix/scores", {}, {P, C, PSC_, D, A}, True),
        ("GET", scale, {}, {P, C, PSC_, D, A}, True),
        ("PUT", scale, {"json": {"scale": 2, "reason": "prescribed"}}, {C, A}, True),
        ("DELETE", scale, {}, {C, A}, True),
        ("GET", f"/sites/{SITE}/flags", {}, {P, C, A}, True),
        ("GET", f"/flags/{flag_id}", {}, {P, C, A}, True),
        ("POST", f"/flags/{flag_id}/acknowledge", {}, {P, C, A}, True),
        ("POST", "/news2/calculate", {"json": {"pulse": 80}}, set(Role), False),
        ("GET", "/soft-signs", {}, set(Role), False),
    ]


async def test_access_matrix(seeded):
    scoring, flag_id = seeded
    wrong = []
    for method, path, kwargs, allowed, scoped in routes(flag_id):
        r = await scoring.client.request(method, path, **kwargs)
        if r.status_code != 401 or r.headers["content-type"] != "application/problem+json":
            wrong.append((method, path, "no token", r.status_code))
        for role in Role:
            scopes = [*IN_SCOPE, OUT_OF_SCOPE] if role not in (A, D) else [{}]
            for scope in scopes:
                got = await scoring.client.request(method, path, **kwargs,
                                                   headers=scoring.headers(role, **scope))
                inside = role in (A, D) or scope is not OUT_OF_SCOPE or not scoped
                want = 200 if role in allowed and inside else 403
                if got.status_code != want:
                    wrong.append((method, path, role, scope, got.status_code, want))
    assert wrong == []


async def test_unknown_site_flags_only_for_the_site_itself(sqlite_scoring):
    scoring = sqlite_scoring
    own = scoring.headers(P, sites=["1-424242"])
    assert (await scoring.client.get("/sites/1-424242/flags", headers=own)).json() == []
    by_icb = scoring.headers(P, icbs=[ICB])
    assert (await scoring.client.get("/sites/1-424242/flags", headers=by_icb)).status_code == 403


async def test_unknown_flag_is_404(sqlite_scoring):
    r = await sqlite_scoring.client.post(
        "/flags/00000000-0000-0000-0000-000000000000/acknowledge", headers=sqlite_scoring.admin)
    assert r.status_code == 404


@pytest.mark.parametrize(("body", "total", "risk", "subs"), [
    ({"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 130, "pulse": 70,
      "consciousness": "A", "temperature": 35.05}, 1, "low", {"temperature": 1}),
    ({"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 130, "pulse": 70,
      "consciousness": "A", "temperature": "39.05"}, 2, "low", {"temperature": 2}),
    ({"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 130, "pulse": 70,
      "consciousness": "A", "temperature": 95.0, "temperature_unit": "[degF]"}, 3, "low-medium",
     {"temperature": 3}),
    ({"respiration_rate": 25, "spo2": 91, "on_oxygen": True, "systolic_bp": 90, "pulse": 131,
      "consciousness": "U", "temperature": 39.1}, 19, "high",
     {"respiration_rate": 3, "spo2": 3, "air_or_oxygen": 2, "systolic_bp": 3, "pulse": 3,
      "consciousness": 3, "temperature": 2}),
])
async def test_calculator_scores_without_storing(sqlite_scoring, body, total, risk, subs):
    r = await sqlite_scoring.client.post("/news2/calculate", json=body,
                                         headers=sqlite_scoring.headers(P))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["total"], out["risk"], out["scale"]) == (total, risk, 1)
    assert {k: v for k, v in out["sub_scores"].items() if v} == subs
    scores = await sqlite_scoring.client.get("/sites/1-5868490225/flags",
                                             headers=sqlite_scoring.admin)
    assert scores.json() == []


async def test_calculator_incomplete_set_and_soft_signs(sqlite_scoring):
    r = await sqlite_scoring.client.post(
        "/news2/calculate", json={"pulse": 131, "soft_signs": ["R2-PAIN"], "client_total": 3},
        headers=sqlite_scoring.headers(C))
    out = r.json()
    assert out["total"] is None and out["missing"][0] == "respiration_rate"
    assert out["soft_signs"] == ["R2-PAIN"] and out["soft_sign_prompt"].startswith("Take a full")
    assert out["claim"] == "cannot compare: incomplete set"
    assert out["flag_reasons"] == ["incomplete set already scores low-medium or worse",
                                   "soft signs present"]


async def test_calculator_problem_names_every_implausible_parameter(sqlite_scoring):
    r = await sqlite_scoring.client.post(
        "/news2/calculate", json={"spo2": 101, "respiration_rate": 0, "soft_signs": ["XX"]},
        headers=sqlite_scoring.headers(P))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["respiration_rate", "spo2", "soft_signs"]


@pytest.mark.parametrize("raw", ['{"pulse": "NaN"}', '{"unknown": 1}',
                                 '{"consciousness": "X"}', '{"soft_signs": ["R2-\\u0000"]}',
                                 '{"temperature_unit": "K", "temperature": 300}',
                                 '{"pulse": true}', '{"client_total": 99999999999}'])
async def test_calculator_rejects_bad_input_at_the_edge(sqlite_scoring, raw):
    r = await sqlite_scoring.client.post(
        "/news2/calculate", content=raw.encode(),
        headers={**sqlite_scoring.headers(P), "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"], r.text


async def test_calculator_rejects_an_overflowing_number(sqlite_scoring):
    r = await sqlite_scoring.client.post(
        "/news2/calculate", content=b'{"pulse": 1e400}',
        headers={**sqlite_scoring.headers(P), "content-type": "application/json"})
    assert r.status_code == 422


async def test_calculator_scale_2_is_for_clinicians_only(sqlite_scoring):
    body = {"spo2": 88, "on_oxygen": False, "spo2_scale": 2}
    denied = await sqlite_scoring.client.post("/news2/calculate", json=body,
                                              headers=sqlite_scoring.headers(P))
    assert denied.status_code == 403 and denied.json()["errors"][0]["field"] == "spo2_scale"
    ok = await sqlite_scoring.client.post("/news2/calculate", json=body,
                                          headers=sqlite_scoring.headers(C))
    assert (ok.json()["scale"], ok.json()["sub_scores"]["spo2"]) == (2, 0)


async def test_soft_sign_catalogue(sqlite_scoring):
    r = await sqlite_scoring.client.get("/soft-signs", headers=sqlite_scoring.headers(D))
    codes = [s["code"] for s in r.json()]
    assert len(codes) == 21 and codes[0] == "R2-BREATH" and codes[-1] == "SW-H"


async def test_escalation_wording_is_configured_per_area(tmp_path):
    harness, manager = await start_harness(
        tmp_path, escalation_wording={"high": "Ring 999 now (Devon wording)."})
    try:
        body = {"respiration_rate": 25, "spo2": 91, "on_oxygen": True, "systolic_bp": 90,
                "pulse": 131, "consciousness": "U", "temperature": 39.1}
        high = await harness.client.post("/news2/calculate", json=body, headers=harness.admin)
        assert high.json()["response"] == "Ring 999 now (Devon wording)."
        low = await harness.client.post("/news2/calculate", json={**body, **NORMALISH},
                                        headers=harness.admin)
        assert low.json()["response"].startswith("Low risk")
    finally:
        await harness.client.aclose()
        await manager.__aexit__(None, None, None)


NORMALISH = {"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 130,
             "pulse": 70, "consciousness": "A", "temperature": 37}


def test_escalation_wording_from_the_environment_is_json(monkeypatch):
    from shared.settings import load_settings

    monkeypatch.setenv("SCORING_ESCALATION_WORDING", '{"medium": "Call the GP."}')
    assert load_settings("scoring").escalation_wording == {"medium": "Call the GP."}
    monkeypatch.setenv("SCORING_ESCALATION_WORDING", '{"purple": "x"}')
    with pytest.raises(ValueError):
        load_settings("scoring")
