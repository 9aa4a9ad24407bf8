"""Native JSON: one set, a batch, read back; validation, scope, idempotency (both dialects)."""

from __future__ import annotations

import gc
from datetime import date

import pytest

from services.ingest.bootstrap import bootstrap
from shared.auth import Role
from shared.bus.memory import MemoryBus
from shared.settings import load_settings
from tests.integration.ingest.conftest import HOME, OTHER, PLATFORM, bearer

pytestmark = pytest.mark.integration

NHS = "9434765919"
SET = {"nhs_number": NHS, "site_id": HOME, "taken_at": "2026-11-22T11:30:00Z",
       "respiration_rate": 18, "spo2": 97, "on_oxygen": False, "systolic_bp": 128,
       "pulse": 72, "consciousness": "A", "temperature": "36.55",
       "soft_signs": ["R2-EATING"], "client_news2_total": 0, "platform_set_id": "s-1"}


async def test_post_one_set_publishes_one_event_with_the_pseudonym(ingest):
    r = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    assert r.status_code == 201, r.text
    set_id = r.json()["id"]
    assert r.json()["outcome"] == "accepted"
    (event,) = await ingest.outbox()
    data = event["data"]
    assert event["type"] == "ObservationRecorded" and event["subject"] == data["resident"]
    assert data["resident"].startswith("p1_") and data["observation_id"] == set_id
    assert (data["icb_code"], data["psc_code"]) == ("QJK", "SW")
    assert data["temperature_c"] == "36.55" and data["respiration_rate"] == "18"
    assert data["soft_signs"] == ["R2-EATING"] and data["source_platform"] == "carehq"
    assert NHS not in str(event)

    got = await ingest.client.get(f"/observation-sets/{set_id}", headers=PLATFORM)
    assert got.status_code == 200
    assert got.json()["resident"] == data["resident"] and NHS not in got.text
    assert got.json()["temperature_c"] == "36.55"


async def test_retry_same_set_id_is_200_with_original_id_and_no_new_event(ingest):
    first = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    again = await ingest.client.post("/observation-sets", json={**SET, "temperature": "36.550"},
                                     headers=PLATFORM)
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "outcome": "duplicate"}
    assert len(await ingest.outbox()) == 1


async def test_same_set_id_different_content_is_409(ingest):
    await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    r = await ingest.client.post("/observation-sets", json={**SET, "pulse": 73}, headers=PLATFORM)
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "platform_set_id"
    assert len(await ingest.outbox()) == 1


async def test_idempotency_key_replays_and_refuses_other_content(ingest):
    body = {k: v for k, v in SET.items() if k != "platform_set_id"}
    key = {**PLATFORM, "Idempotency-Key": "abc-123"}
    first = await ingest.client.post("/observation-sets", json=body, headers=key)
    again = await ingest.client.post("/observation-sets", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = await ingest.client.post("/observation-sets", json={**body, "pulse": 90}, headers=key)
    assert other.status_code == 409
    assert len(await ingest.outbox()) == 1


async def test_without_any_key_each_post_is_a_new_set(ingest):
    body = {k: v for k, v in SET.items() if k != "platform_set_id"}
    for _ in range(2):
        assert (await ingest.client.post("/observation-sets", json=body,
                                         headers=PLATFORM)).status_code == 201
    assert len(await ingest.outbox()) == 2


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"spo2": 101}, "spo2", "must be between 40 and 100"),
    ({"respiration_rate": 0}, "respiration_rate", "must be between 1 and 80"),
    ({"temperature": "113.5", "temperature_unit": "F"}, "temperature_c",
     "must be between 25 and 45"),
    ({"taken_at": "2026-11-22T12:06:00Z"}, "taken_at", "more than 5 minutes in the future"),
    ({"taken_at": "2026-10-01T12:00:00Z"}, "taken_at", "older than 30 days"),
    ({"soft_signs": ["R2-EATING", "NOPE"]}, "soft_signs.1", "not a known soft-sign code"),
    ({"nhs_number": "9434765918"}, "nhs_number", "check digit does not match"),
    ({"nhs_number": "1111111111"}, "nhs_number", "all digits the same"),
])
async def test_invalid_values_are_422_naming_field_value_rule(ingest, change, field, reason):
    r = await ingest.client.post("/observation-sets", json={**SET, **change}, headers=PLATFORM)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [(e["field"], e["reason"]) for e in errors] == [(field, reason)]
    assert "value" in errors[0] and NHS[:9] not in r.text
    assert await ingest.outbox() == []


async def test_fahrenheit_is_converted_exactly(ingest):
    r = await ingest.client.post("/observation-sets", json={
        **SET, "temperature": "98.6", "temperature_unit": "F"}, headers=PLATFORM)
    assert r.status_code == 201
    assert (await ingest.outbox())[0]["data"]["temperature_c"] == "37"


async def test_edge_validation(ingest):
    bad = {**SET, "consciousness": "X", "temperature_unit": "K", "extra": 1, "spo2": "NaN",
           "recorder": "a\x00b"}
    r = await ingest.client.post("/observation-sets", json=bad, headers=PLATFORM)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {
        "consciousness", "temperature_unit", "extra", "spo2", "recorder"}


async def test_request_level_errors_name_header_and_body_in_one_answer(sqlite_ingest):
    """The single-set route reads its own request: one 422 lists every bad part."""
    post = sqlite_ingest.client.post
    r = await post("/observation-sets", json={**SET, "pulse": "fast"},
                   headers={**PLATFORM, "Idempotency-Key": "has space"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["header.Idempotency-Key", "pulse"]
    r = await post("/observation-sets", content=b'{"site_id": ', headers={
        **PLATFORM, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"] == [{
        "field": "body", "reason": "the body is not valid JSON (at character 12): "
                                   "Expecting value"}]
    r = await post("/observation-sets", content=b"{}", headers={**PLATFORM,
                                                             "Content-Type": "text/plain"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "body", "reason": "the body must be JSON, sent "
                                   "with Content-Type: application/json"}]
    r = await post("/observation-sets", headers=PLATFORM)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "body", "reason": "Field required"}]
    r = await post("/observation-sets", content=b"{bad", headers={"Content-Type": "text/x"})
    assert r.status_code == 401   # who is calling is checked before what they sent


async def test_single_set_route_is_documented_with_its_body_header_and_auth(sqlite_ingest):
    spec = (await sqlite_ingest.client.get("/openapi.json")).json()
    op = spec["paths"]["/observation-sets"]["post"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert [p["name"] for p in op["parameters"]] == ["Idempotency-Key"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert {"site_id", "taken_at", "nhs_number", "pulse"} <= set(body["properties"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


async def test_site_unknown_out_of_scope_and_closed(ingest):
    r = await ingest.client.post("/observation-sets", json={**SET, "site_id": "1-999"},
                                 headers=bearer(Role.ADMIN))
    assert r.status_code == 422 and r.json()["errors"][0]["reason"] == "not a site known to ingest"
    await ingest.site(OTHER, icb="QHL", psc="WM")
    r = await ingest.client.post("/observation-sets", json={**SET, "site_id": OTHER},
                                 headers=PLATFORM)
    assert r.status_code == 403
    await ingest.site(HOME, closed_on=date(2026, 11, 22))
    r = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    assert r.status_code == 422 and r.json()["errors"][0]["reason"] == "site closed on 2026-11-22"
    early = {**SET, "taken_at": "2026-11-21T23:30:00Z"}  # 21 Nov in London: still open
    r = await ingest.client.post("/observation-sets", json=early, headers=PLATFORM)
    assert r.status_code == 201


async def test_auth(ingest):
    assert (await ingest.client.post("/observation-sets", json=SET)).status_code == 401
    r = await ingest.client.post("/observation-sets", json=SET, headers=bearer(Role.DASHBOARD))
    assert r.status_code == 403
    r = await ingest.client.post("/observation-sets", json={**SET, "source_platform": "other"},
                                 headers=PLATFORM)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "source_platform"
    icb_token = bearer(icbs=["QJK"])
    assert (await ingest.client.post("/observation-sets", json=SET,
                                     headers=icb_token)).status_code == 201


async def test_get_is_scope_checked(ingest):
    posted = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    set_id = posted.json()["id"]
    r = await ingest.client.get(f"/observation-sets/{set_id}", headers=bearer(sites=[OTHER]))
    assert r.status_code == 403
    r = await ingest.client.get("/observation-sets/00000000-0000-0000-0000-000000000000",
                                headers=PLATFORM)
    assert r.status_code == 404


async def test_local_id_resident(ingest):
    body = {**SET, "nhs_number": None, "local_id": "R-17"}
    r = await ingest.client.post("/observation-sets", json=body, headers=PLATFORM)
    assert r.status_code == 201
    assert (await ingest.outbox())[0]["data"]["resident"].startswith("l1_")
    none = {k: v for k, v in body.items() if k != "local_id"}
    r = await ingest.client.post("/observation-sets", json=none, headers=PLATFORM)
    assert r.status_code == 422
    assert r.json()["errors"][0]["reason"] == "nhs_number or local_id is required"


async def test_concurrent_single_posts_share_transactions_but_not_outcomes(ingest):
    import asyncio

    bodies = [{**SET, "platform_set_id": f"c-{n % 40}"} for n in range(60)]
    bodies += [{**SET, "platform_set_id": "c-bad", "spo2": 300}]
    answers = await asyncio.gather(*(ingest.client.post("/observation-sets", json=b,
                                                        headers=PLATFORM) for b in bodies))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 40 and codes.count(200) == 20 and codes[-1] == 422
    ids = {b["platform_set_id"]: set() for b in bodies[:60]}
    for body, answer in zip(bodies[:60], answers, strict=False):
        ids[body["platform_set_id"]].add(answer.json()["id"])
    assert all(len(v) == 1 for v in ids.values())  # a duplicate names the original id
    assert len(await ingest.outbox()) == 40


async def test_same_instant_in_another_offset_is_the_same_content(sqlite_ingest):
    first = await sqlite_ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    shifted = {**SET, "taken_at": "2026-11-22T12:30:00+01:00"}
    again = await sqlite_ingest.client.post("/observation-sets", json=shifted, headers=PLATFORM)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("change", [
    {"pulse": 10**30}, {"pulse": "Infinity"}, {"spo2": "-NaN"}, {"temperature": 1e308},
    {"local_id": "a\x00b", "nhs_number": None}, {"nhs_number": ["943"]},
    {"nhs_number": 9434765919.0}, {"taken_at": "2026-11-22T11:30:00"}, {"site_id": "x" * 5000},
    {"soft_signs": "R2-PAIN"}, {"client_news2_total": 2**63}, {"recorder": "r" * 201},
    {"platform_set_id": "\x00"}, {"consciousness": None, "pulse": -0.0},
])
async def test_hostile_input_is_4xx_never_5xx(sqlite_ingest, change):
    r = await sqlite_ingest.client.post("/observation-sets", json={**SET, **change},
                                        headers=PLATFORM)
    assert r.status_code == 422, r.text
    assert NHS not in r.text and "943 476" not in r.text


async def test_batch_items_that_are_not_objects(sqlite_ingest):
    r = await sqlite_ingest.client.post("/observation-sets/batch",
                                        json={"items": [SET, 1, None]}, headers=PLATFORM)
    assert r.status_code == 422  # items must be objects: the envelope itself is invalid


async def test_started_runtime_freezes_startup_objects_until_stopped(tmp_path):
    settings = load_settings("ingest", data_dir=tmp_path, relay_poll_seconds=0.01)
    runtime = bootstrap(settings, bus=MemoryBus())
    await runtime.start()
    try:
        assert gc.get_freeze_count() > 0  # full collections skip what start-up built
    finally:
        await runtime.stop()
    assert gc.get_freeze_count() == 0  # and a stopped runtime leaves the collector as it was


async def test_pseudonym_of_a_resident_before_any_reading_is_the_one_their_sets_carry(ingest):
    """A clinician gets the id scoring knows a resident by (to set their SpO2 scale before
    the first reading): the same keyed pseudonym their sets will carry; nothing stored."""
    clinician = bearer(Role.CLINICIAN, "dr-jones", sites=[HOME])
    spaced = f"{NHS[:3]} {NHS[3:6]} {NHS[6:]}"
    r = await ingest.client.post("/residents/pseudonym", headers=clinician,
                                 json={"nhs_number": spaced, "site_id": HOME})
    assert r.status_code == 200, r.text
    assert r.json()["site_id"] == HOME and NHS not in r.text
    assert await ingest.outbox() == []
    posted = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    assert posted.status_code == 201
    (event,) = await ingest.outbox()
    assert r.json()["pseudonym"] == event["data"]["resident"]
    local = await ingest.client.post("/residents/pseudonym", headers=PLATFORM,
                                     json={"local_id": "R-17", "site_id": HOME})
    assert local.status_code == 200 and local.json()["pseudonym"].startswith("l1_")


@pytest.mark.parametrize(("body", "who", "status", "field", "reason"), [
    ({"nhs_number": "9434765918"}, "clinician", 422, "nhs_number", "check digit does not match"),
    ({}, "clinician", 422, "nhs_number", "nhs_number or local_id is required"),
    ({"local_id": "R-17"}, "clinician", 422, "source_platform",
     "name the platform whose local_id this is"),
    ({"local_id": "R-17", "source_platform": "other"}, "platform", 403, "source_platform",
     "a platform token may only act as itself"),
    ({"nhs_number": NHS, "site_id": "1-999"}, "admin", 422, "site_id",
     "not a site known to ingest"),
    ({"nhs_number": NHS, "site_id": OTHER}, "clinician", 403, "site_id",
     "outside this token's scope"),
])
async def test_pseudonym_refusals_name_the_field(ingest, body, who, status, field, reason):
    await ingest.site(OTHER, icb="QHL", psc="WM")
    headers = {"clinician": bearer(Role.CLINICIAN, "dr-jones", sites=[HOME]),
               "platform": PLATFORM, "admin": bearer(Role.ADMIN)}[who]
    r = await ingest.client.post("/residents/pseudonym", headers=headers,
                                 json={"site_id": HOME, **body})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["reason"]) for e in r.json()["errors"]] == [(field, reason)]
    assert "9434765918" not in r.text


async def test_pseudonym_is_for_clinicians_and_platforms(ingest):
    for role in (Role.PSC, Role.DASHBOARD):
        r = await ingest.client.post("/residents/pseudonym", headers=bearer(role, sites=[HOME]),
                                     json={"nhs_number": NHS, "site_id": HOME})
        assert r.status_code == 403, role


async def test_withdrawing_a_set_entered_in_error_publishes_it_once(ingest):
    posted = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    set_id = posted.json()["id"]
    r = await ingest.client.delete(f"/observation-sets/{set_id}", headers=PLATFORM)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["withdrawal_reason"], body["replaced_by"]) == (
        set_id, "entered-in-error", None)
    assert body["withdrawn_at"].startswith("2026-11-22T12:00") and body["pulse"] == "72"
    again = await ingest.client.delete(f"/observation-sets/{set_id}", headers=PLATFORM)
    assert again.status_code == 200 and again.json() == body   # withdrawn once
    got = await ingest.client.get(f"/observation-sets/{set_id}", headers=PLATFORM)
    assert got.json()["withdrawal_reason"] == "entered-in-error"
    recorded, withdrawn = await ingest.outbox()
    assert withdrawn["type"] == "ObservationSetWithdrawn"
    assert withdrawn["subject"] == recorded["subject"] == withdrawn["data"]["resident"]
    data = withdrawn["data"]
    assert (data["observation_id"], data["site_id"], data["icb_code"], data["psc_code"],
            data["source_platform"], data["reason"], data["replaced_by"]) == (
        set_id, HOME, "QJK", "SW", "carehq", "entered-in-error", None)
    assert data["taken_at"] == recorded["data"]["taken_at"] and NHS not in str(withdrawn)
    # The same platform set id again is the withdrawn set's duplicate, not a new reading.
    retry = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    assert retry.json() == {"id": set_id, "outcome": "duplicate"}
    assert len(await ingest.outbox()) == 2


async def test_only_the_recording_platform_may_withdraw_a_set(ingest):
    posted = await ingest.client.post("/observation-sets", json=SET, headers=PLATFORM)
    set_id = posted.json()["id"]
    other_platform = bearer(sub="nourish", sites=[HOME])
    r = await ingest.client.delete(f"/observation-sets/{set_id}", headers=other_platform)
    assert r.status_code == 403
    assert "only the platform that recorded a set can withdraw it" in r.json()["detail"]
    out_of_scope = bearer(sites=[OTHER])
    assert (await ingest.client.delete(f"/observation-sets/{set_id}",
                                       headers=out_of_scope)).status_code == 403
    clinician = bearer(Role.CLINICIAN, sub="nurse", sites=[HOME])
    assert (await ingest.client.delete(f"/observation-sets/{set_id}",
                                       headers=clinician)).status_code == 403
    assert (await ingest.client.delete(f"/observation-sets/{set_id}")).status_code == 401
    unknown = await ingest.client.delete(
        "/observation-sets/00000000-0000-4000-8000-000000000000", headers=PLATFORM)
    assert unknown.status_code == 404
    assert len(await ingest.outbox()) == 1   # only the set's own ObservationRecorded
    got = await ingest.client.get(f"/observation-sets/{set_id}", headers=PLATFORM)
    assert got.json()["withdrawn_at"] is None
