"""FHIR R4: the six real examples, Bundles grouped into sets, outcomes naming elements."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.ingest.bootstrap import bootstrap, create_app
from shared.auth import Role
from shared.settings import load_settings
from tests.integration.ingest.conftest import HOME, OTHER, PLATFORM, Ingest, bearer

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fhir"
NHS = "9434765919"
NHS_ID = {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS}
SITE_EXT = "https://fhir.mandet.example/StructureDefinition/site-id"
WHEN = "2026-11-22T11:30:00+00:00"


def example(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


EXAMPLES = {  # file -> (date it carries, the value ingest must publish)
    "r4spec-observation-example-respiratory-rate.json": ("1999-07-02", "respiration_rate", "26"),
    "r4spec-observation-example-heart-rate.json": ("1999-07-02", "pulse", "44"),
    "r4spec-observation-example-bloodpressure.json": ("2012-09-17", "systolic_bp", "107"),
    "r4spec-observation-example-body-temperature.json": ("1999-07-02", "temperature_c", "36.5"),
    "UKCore-Observation-PatientConsciousness-Example.json": ("2023-08-10", "consciousness", "V"),
    "UKCore-Observation-OxygenTherapy-Example.json": ("2023-08-10", "on_oxygen", True),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
async def test_real_examples_are_accepted_unchanged(tmp_path, name):
    day, field, value = EXAMPLES[name]
    clock = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    runtime = bootstrap(load_settings("ingest", data_dir=tmp_path, relay_poll_seconds=0.01,
                                      max_age_days=3650), clock=lambda: clock)
    async with LifespanManager(create_app(runtime)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            harness = Ingest(client, runtime, runtime.bus)
            await harness.site()
            # the examples name no site: the platform token scoped to one site supplies it
            r = await client.post("/fhir/Observation", json=example(name), headers=PLATFORM)
            assert r.status_code == 201, r.text
            assert r.headers["content-type"] == "application/fhir+json"
            assert r.headers["location"].startswith("observation-sets/")
            (event,) = await harness.outbox()
            assert event["data"][field] == value
            assert event["data"]["resident"].startswith("l1_")  # Patient/example, a local id
            assert event["data"]["taken_at"].startswith(day)


def obs(code: tuple[str, str], **value) -> dict:
    system = {"L": "http://loinc.org", "S": "http://snomed.info/sct"}[code[0]]
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": system, "code": code[1]}]},
            "subject": {"identifier": NHS_ID}, "effectiveDateTime": WHEN,
            "extension": [{"url": SITE_EXT, "valueIdentifier": {"value": HOME}}], **value}


def qty(value, code: str) -> dict:
    return {"valueQuantity": {"value": value, "system": "http://unitsofmeasure.org",
                              "code": code}}


def bundle(*resources: dict, kind: str = "batch") -> dict:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"resource": r, "request": {"method": "POST", "url": "Observation"}}
                      for r in resources]}


def full_set() -> list[dict]:
    acvpu = {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                   "code": "248234008"}]}}
    bp = example("r4spec-observation-example-bloodpressure.json")
    bp.update(subject={"identifier": NHS_ID}, effectiveDateTime=WHEN,
              extension=[{"url": SITE_EXT, "valueIdentifier": {"value": HOME}}])
    return [obs(("L", "9279-1"), **qty(19, "{Breaths}/min")),
            obs(("S", "431314004"), **qty(96, "%")),
            obs(("S", "722742002")),
            bp,
            obs(("S", "364075005"), **qty(88, "{beats}/min")),
            obs(("S", "1104441000000107"), **acvpu),
            obs(("L", "8310-5"), **qty(99.5, "[degF]")),
            obs(("S", "1104051000000101"), valueInteger=1)]


async def test_bundle_of_one_resident_at_one_time_is_one_set(ingest):
    r = await ingest.client.post("/fhir", json=bundle(*full_set()), headers=PLATFORM)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert r.json()["type"] == "batch-response"
    assert {e["response"]["status"] for e in entries} == {"201 Created"}
    assert len({e["response"]["location"] for e in entries}) == 1
    (event,) = await ingest.outbox()
    data = event["data"]
    assert (data["respiration_rate"], data["spo2"], data["on_oxygen"], data["systolic_bp"],
            data["pulse"], data["consciousness"], data["temperature_c"],
            data["client_news2_total"]) == ("19", "96", False, "107", "88", "A", "37.5", 1)
    assert data["resident"].startswith("p1_") and NHS not in r.text + str(event)


async def test_retried_bundle_is_a_duplicate_and_publishes_nothing(ingest):
    resources = full_set()
    for i, resource in enumerate(resources):
        resource["identifier"] = [{"system": "https://carehq.example/obs", "value": f"o-{i}"}]
    first = await ingest.client.post("/fhir", json=bundle(*resources), headers=PLATFORM)
    again = await ingest.client.post("/fhir", json=bundle(*resources), headers=PLATFORM)
    assert {e["response"]["status"] for e in again.json()["entry"]} == {"200 OK"}
    assert [e["response"]["location"] for e in again.json()["entry"]] == \
        [e["response"]["location"] for e in first.json()["entry"]]
    assert len(await ingest.outbox()) == 1


async def test_entries_report_what_was_ignored_or_wrong(ingest):
    weight = obs(("L", "29463-7"), **qty(70, "kg"))
    cancelled = {**obs(("L", "8867-4"), **qty(200, "/min")), "status": "cancelled"}
    wrong = {**obs(("L", "8867-4"), **qty(70, "/h")),
             "subject": {"identifier": {**NHS_ID, "value": "4010232137"}}}
    absent = {**obs(("L", "9279-1")), "dataAbsentReason": {"coding": [{"code": "asked-declined"}]}}
    other_time = {**obs(("L", "8867-4"), **qty(70, "/min")),
                  "effectiveDateTime": "2026-11-22T10:00:00Z"}
    eie = {**obs(("L", "2708-6"), **qty(80, "%")), "status": "entered-in-error"}
    r = await ingest.client.post(
        "/fhir", json=bundle(weight, cancelled, wrong, absent, other_time, eie), headers=PLATFORM)
    entries = [e["response"] for e in r.json()["entry"]]
    assert [e["status"] for e in entries] == ["200 OK", "200 OK", "422 Unprocessable Entity",
                                              "200 OK", "201 Created", "200 OK"]
    assert "not a NEWS2 parameter" in entries[0]["outcome"]["issue"][0]["diagnostics"]
    issue = entries[1]["outcome"]["issue"][0]
    assert "never scored" in issue["diagnostics"]
    assert issue["expression"] == ["Bundle.entry[1].resource.status"]
    issue = entries[2]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[2].resource.valueQuantity.code"]
    issue = entries[5]["outcome"]["issue"][0]   # entered in error, with nothing recorded
    assert (issue["severity"], issue["expression"]) == (
        "warning", ["Bundle.entry[5].resource.status"])
    assert issue["diagnostics"] == (
        "status: no reading of this resident at this time is recorded from this platform; "
        "nothing was withdrawn or stored (got entered-in-error)")
    assert len(await ingest.outbox()) == 1  # only the 10:00 pulse


async def test_invalid_value_names_the_element(ingest):
    r = await ingest.client.post("/fhir", json=bundle(obs(("L", "2708-6"), **qty(101, "%"))),
                                 headers=PLATFORM)
    (entry,) = r.json()["entry"]
    assert entry["response"]["status"] == "422 Unprocessable Entity"
    issue = entry["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].resource.valueQuantity.value"]
    assert "spo2" in issue["diagnostics"] and "101" in issue["diagnostics"]


async def test_transaction_is_all_or_nothing(ingest):
    bad = obs(("L", "2708-6"), **qty(101, "%"))
    r = await ingest.client.post("/fhir", json=bundle(obs(("L", "8867-4"), **qty(70, "/min")),
                                                      {**bad, "effectiveDateTime": "2026-11-22"
                                                       "T11:00:00Z"}, kind="transaction"),
                                 headers=PLATFORM)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert await ingest.outbox() == []
    ok = await ingest.client.post("/fhir", json=bundle(*full_set(), kind="transaction"),
                                  headers=PLATFORM)
    assert ok.status_code == 200 and ok.json()["type"] == "transaction-response"


async def test_patient_and_site_resolved_inside_the_bundle(ingest):
    patient = {"resourceType": "Patient", "identifier": [NHS_ID]}
    org = {"resourceType": "Organization", "id": "home",
           "identifier": [{"system": "https://www.cqc.org.uk/location", "value": HOME}]}
    o = obs(("L", "8867-4"), **qty(70, "/min"))
    o.pop("extension")
    o.update(subject={"reference": "urn:uuid:1f4d"}, performer=[{"reference": "Organization/home"}])
    doc = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1f4d", "resource": patient}, {"resource": org}, {"resource": o}]}
    r = await ingest.client.post("/fhir", json=doc, headers=bearer(sites=[HOME, OTHER]))
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["200 OK", "200 OK",
                                                                    "201 Created"]
    (event,) = await ingest.outbox()
    assert event["data"]["site_id"] == HOME and event["data"]["resident"].startswith("p1_")


async def test_observation_entries_that_update_or_delete_are_refused_by_name(ingest):
    doc = bundle(*full_set()[:2])
    doc["entry"][1]["request"] = {"method": "PUT", "url": "Observation/abc"}
    doc["entry"].insert(0, {"resource": {"resourceType": "Patient", "identifier": [NHS_ID]},
                            "request": {"method": "PUT", "url": "Patient?identifier=x"}})
    r = await ingest.client.post("/fhir", json=doc, headers=PLATFORM)
    assert r.status_code == 422 and r.headers["content-type"] == "application/fhir+json"
    (issue,) = r.json()["issue"]
    assert issue["code"] == "not-supported"
    assert issue["expression"] == ["Bundle.entry[2].request.method"]
    assert issue["diagnostics"].startswith("request.method PUT: Observations can only be created")
    assert await ingest.outbox() == []
    doc["entry"][2]["request"]["method"] = "POST"   # the Patient's PUT is fine
    assert (await ingest.client.post("/fhir", json=doc, headers=PLATFORM)).status_code == 200


def identified(resources: list[dict]) -> list[dict]:
    for i, resource in enumerate(resources):
        resource["identifier"] = [{"system": "https://carehq.example/obs", "value": f"o-{i}"}]
    return resources


def set_id_of(response) -> str:
    location = (response.json()["entry"][0]["response"]["location"]
                if response.json()["resourceType"] == "Bundle" else response.headers["location"])
    return location.rsplit("/", 1)[-1]


async def test_amended_reading_replaces_the_recorded_set(ingest):
    first = await ingest.client.post("/fhir", json=bundle(*identified(full_set())),
                                     headers=PLATFORM)
    a = set_id_of(first)
    rr = {**identified(full_set())[0], "status": "amended", **qty(24, "{Breaths}/min")}
    r = await ingest.client.post("/fhir/Observation", json=rr, headers=PLATFORM)
    assert r.status_code == 201, r.text
    b = set_id_of(r)
    assert b != a
    # The new set: the recorded values, with the amended respiration rate over them.
    new = (await ingest.client.get(f"/observation-sets/{b}", headers=PLATFORM)).json()
    assert (new["respiration_rate"], new["spo2"], new["on_oxygen"], new["systolic_bp"],
            new["pulse"], new["consciousness"], new["temperature_c"]) == (
        "24", "96", False, "107", "88", "A", "37.5")
    assert new["withdrawn_at"] is None
    old = (await ingest.client.get(f"/observation-sets/{a}", headers=PLATFORM)).json()
    assert (old["withdrawal_reason"], old["replaced_by"]) == ("amended", b)
    assert old["respiration_rate"] == "19" and old["withdrawn_at"].startswith("2026-11-22T12:00")
    recorded_a, recorded_b, withdrawn = await ingest.outbox()
    assert [e["type"] for e in (recorded_a, recorded_b, withdrawn)] == [
        "ObservationRecorded", "ObservationRecorded", "ObservationSetWithdrawn"]
    assert recorded_b["data"]["observation_id"] == b
    assert recorded_b["data"]["respiration_rate"] == "24" and recorded_b["data"]["pulse"] == "88"
    w = withdrawn["data"]
    assert (w["observation_id"], w["reason"], w["replaced_by"]) == (a, "amended", b)
    assert w["resident"] == recorded_a["data"]["resident"] == withdrawn["subject"]
    assert (w["site_id"], w["icb_code"], w["psc_code"], w["source_platform"]) == (
        HOME, "QJK", "SW", "carehq")
    assert w["taken_at"] == recorded_a["data"]["taken_at"] and NHS not in str(withdrawn)

    # A retry of the amendment is a duplicate of the new set; nothing more is published.
    again = await ingest.client.post("/fhir/Observation", json=rr, headers=PLATFORM)
    assert (again.status_code, set_id_of(again)) == (200, b)
    # A correction of the amended reading replaces the new set in turn.
    pulse = {**identified(full_set())[4], "status": "corrected", **qty(91, "{beats}/min")}
    r = await ingest.client.post("/fhir/Observation", json=pulse, headers=PLATFORM)
    c = set_id_of(r)
    events = await ingest.outbox()
    assert [e["type"] for e in events[3:]] == ["ObservationRecorded", "ObservationSetWithdrawn"]
    assert (events[3]["data"]["respiration_rate"], events[3]["data"]["pulse"]) == ("24", "91")
    assert (events[4]["data"]["observation_id"], events[4]["data"]["reason"],
            events[4]["data"]["replaced_by"]) == (b, "corrected", c)


async def test_the_same_observation_sent_again_as_amended_replaces_its_set(ingest):
    pulse = {**obs(("S", "364075005"), **qty(88, "{beats}/min")),
             "identifier": [{"system": "https://carehq.example/obs", "value": "p-1"}]}
    a = set_id_of(await ingest.client.post("/fhir/Observation", json=pulse, headers=PLATFORM))
    amended = {**pulse, "status": "amended", **qty(91, "{beats}/min")}
    r = await ingest.client.post("/fhir/Observation", json=amended, headers=PLATFORM)
    assert r.status_code == 201, r.text
    b = set_id_of(r)
    again = await ingest.client.post("/fhir/Observation", json=amended, headers=PLATFORM)
    assert (again.status_code, set_id_of(again)) == (200, b)
    new = (await ingest.client.get(f"/observation-sets/{b}", headers=PLATFORM)).json()
    old = (await ingest.client.get(f"/observation-sets/{a}", headers=PLATFORM)).json()
    assert (new["pulse"], old["pulse"], old["replaced_by"]) == ("91", "88", b)
    assert new["platform_set_id"].startswith(old["platform_set_id"] + "~")
    assert [e["type"] for e in await ingest.outbox()] == [
        "ObservationRecorded", "ObservationRecorded", "ObservationSetWithdrawn"]


async def test_amendment_without_identifiers_retried_is_a_duplicate(ingest):
    await ingest.client.post("/fhir", json=bundle(*full_set()), headers=PLATFORM)
    rr = {**full_set()[0], "status": "amended", **qty(24, "{Breaths}/min")}
    first = await ingest.client.post("/fhir/Observation", json=rr, headers=PLATFORM)
    again = await ingest.client.post("/fhir/Observation", json=rr, headers=PLATFORM)
    assert (first.status_code, again.status_code) == (201, 200)
    assert set_id_of(first) == set_id_of(again)
    assert [e["type"] for e in await ingest.outbox()] == [
        "ObservationRecorded", "ObservationRecorded", "ObservationSetWithdrawn"]


async def test_amending_another_platforms_reading_is_refused_naming_status(ingest):
    first = await ingest.client.post("/fhir", json=bundle(*identified(full_set())),
                                     headers=PLATFORM)
    set_id = set_id_of(first)
    nourish = bearer(sub="nourish", sites=[HOME])
    rr = {**identified(full_set())[0], "status": "amended", **qty(24, "{Breaths}/min")}
    r = await ingest.client.post("/fhir/Observation", json=rr, headers=nourish)
    assert r.status_code == 409 and r.headers["content-type"] == "application/fhir+json"
    (issue,) = r.json()["issue"]
    assert issue["code"] == "conflict" and issue["expression"] == ["Observation.status"]
    assert issue["diagnostics"].startswith(
        f"status: amends a reading of set {set_id}, recorded for this resident at this time "
        "by another platform; only the platform that recorded a reading can amend it")
    # In a Bundle: that entry is refused, naming it; the other resident's set goes in.
    other = {**obs(("L", "8867-4"), **qty(70, "/min")),
             "subject": {"identifier": {"system": NHS_ID["system"], "value": "9000000009"}}}
    doc = bundle(other, {**rr, "status": "corrected"})
    r = await ingest.client.post("/fhir", json=doc, headers=nourish)
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created",
                                                                    "409 Conflict"]
    issue = r.json()["entry"][1]["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.status"]
    assert "(got corrected)" in issue["diagnostics"]
    events = await ingest.outbox()
    assert [(e["type"], e["data"]["respiration_rate"]) for e in events] == [
        ("ObservationRecorded", "19"), ("ObservationRecorded", None)]


async def test_a_reading_entered_in_error_is_left_out_of_the_replacing_set(ingest):
    first = await ingest.client.post("/fhir", json=bundle(*identified(full_set())),
                                     headers=PLATFORM)
    a = set_id_of(first)
    wrong_spo2 = {**identified(full_set())[1], "status": "entered-in-error"}
    r = await ingest.client.post("/fhir/Observation", json=wrong_spo2, headers=PLATFORM)
    assert r.status_code == 201, r.text
    b = set_id_of(r)
    new = (await ingest.client.get(f"/observation-sets/{b}", headers=PLATFORM)).json()
    assert (new["respiration_rate"], new["spo2"], new["on_oxygen"], new["systolic_bp"],
            new["pulse"], new["consciousness"], new["temperature_c"]) == (
        "19", None, False, "107", "88", "A", "37.5")
    old = (await ingest.client.get(f"/observation-sets/{a}", headers=PLATFORM)).json()
    assert (old["withdrawal_reason"], old["replaced_by"], old["spo2"]) == (
        "entered-in-error", b, "96")
    assert [(e["type"], e["data"]["observation_id"]) for e in await ingest.outbox()] == [
        ("ObservationRecorded", a), ("ObservationRecorded", b), ("ObservationSetWithdrawn", a)]
    again = await ingest.client.post("/fhir/Observation", json=wrong_spo2, headers=PLATFORM)
    assert (again.status_code, set_id_of(again)) == (200, b)   # a retry: the same set
    assert len(await ingest.outbox()) == 3


async def test_a_reading_entered_in_error_with_its_correction_replaces_it(ingest):
    first = await ingest.client.post("/fhir", json=bundle(*identified(full_set())),
                                     headers=PLATFORM)
    wrong = {**identified(full_set())[1], "status": "entered-in-error"}
    right = {**obs(("S", "431314004"), **qty(93, "%")),
             "identifier": [{"system": "https://carehq.example/obs", "value": "o-1b"}]}
    r = await ingest.client.post("/fhir", json=bundle(wrong, right), headers=PLATFORM)
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created"] * 2
    new = (await ingest.client.get(f"/observation-sets/{set_id_of(r)}",
                                   headers=PLATFORM)).json()
    assert (new["spo2"], new["respiration_rate"]) == ("93", "19")
    old = (await ingest.client.get(f"/observation-sets/{set_id_of(first)}",
                                   headers=PLATFORM)).json()
    assert old["withdrawal_reason"] == "entered-in-error"


async def test_the_only_reading_entered_in_error_withdraws_the_set(ingest):
    pulse = {**obs(("S", "364075005"), **qty(88, "{beats}/min")),
             "identifier": [{"system": "https://carehq.example/obs", "value": "p-1"}]}
    a = set_id_of(await ingest.client.post("/fhir/Observation", json=pulse, headers=PLATFORM))
    wrong = {**pulse, "status": "entered-in-error"}
    for _ in range(2):   # the second is a retry: the same answer, nothing more published
        r = await ingest.client.post("/fhir/Observation", json=wrong, headers=PLATFORM)
        assert r.status_code == 200, r.text
        assert r.headers["location"] == f"observation-sets/{a}"
        assert r.json()["issue"][0]["diagnostics"] == f"withdrawn: observation set {a}"
    events = await ingest.outbox()
    assert [(e["type"], e["data"]["observation_id"]) for e in events] == [
        ("ObservationRecorded", a), ("ObservationSetWithdrawn", a)]
    assert (events[1]["data"]["reason"], events[1]["data"]["replaced_by"]) == (
        "entered-in-error", None)
    # A parameter the recorded set does not hold cannot be entered in error.
    b = set_id_of(await ingest.client.post("/fhir/Observation", json=pulse | {
        "identifier": [{"system": "https://carehq.example/obs", "value": "p-2"}],
        "effectiveDateTime": "2026-11-22T11:45:00+00:00"}, headers=PLATFORM))
    spo2 = {**obs(("S", "431314004"), **qty(96, "%")), "status": "entered-in-error",
            "effectiveDateTime": "2026-11-22T11:45:00+00:00"}
    r = await ingest.client.post("/fhir/Observation", json=spo2, headers=PLATFORM)
    assert r.status_code == 409
    assert r.json()["issue"][0]["diagnostics"].startswith(
        f"status: amends a reading of set {b}, recorded for this resident at this time without "
        "spo2, so there is nothing entered in error to withdraw")


async def test_amended_reading_with_nothing_recorded_is_recorded_once(ingest):
    rr = {**identified(full_set())[0], "status": "amended"}
    first = await ingest.client.post("/fhir/Observation", json=rr, headers=PLATFORM)
    again = await ingest.client.post("/fhir/Observation", json=rr, headers=PLATFORM)
    assert (first.status_code, again.status_code) == (201, 200)   # the retry: a duplicate
    assert first.headers["location"] == again.headers["location"]
    (event,) = await ingest.outbox()
    assert event["data"]["respiration_rate"] == "19"


async def test_native_sets_cannot_claim_to_amend(ingest):
    body = {"nhs_number": NHS, "site_id": HOME, "taken_at": WHEN, "pulse": 70,
            "amends": "amended"}
    r = await ingest.client.post("/observation-sets", json=body, headers=PLATFORM)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["amends"]


async def test_missing_site_names_performer(ingest):
    o = obs(("L", "8867-4"), **qty(70, "/min"))
    o.pop("extension")
    r = await ingest.client.post("/fhir/Observation", json=o,
                                 headers=bearer(sites=[HOME, OTHER]))
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Observation.performer"]


async def test_single_cancelled_is_not_recorded(ingest):
    r = await ingest.client.post("/fhir/Observation", headers=PLATFORM,
                                 json={**obs(("L", "8867-4"), **qty(70, "/min")),
                                       "status": "cancelled"})
    assert r.status_code == 200 and r.json()["issue"][0]["severity"] == "warning"
    assert await ingest.outbox() == []


async def test_malformed_bodies_are_operation_outcomes(sqlite_ingest):
    c = sqlite_ingest.client
    r = await c.post("/fhir", content=b"{", headers=PLATFORM)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = await c.post("/fhir", json={"resourceType": "Bundle", "type": "searchset"},
                     headers=PLATFORM)
    assert r.json()["issue"][0]["expression"] == ["Bundle.type"]
    bad = copy.deepcopy(obs(("L", "8867-4"), **qty("x", "/min")))
    r = await c.post("/fhir/Observation", json=bad, headers=PLATFORM)
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Observation.valueQuantity.value"]
    r = await c.post("/fhir/Observation", json={**bad, "effectiveDateTime": "2026-11-22T10:00"},
                     headers=PLATFORM)
    assert r.status_code == 422
    assert (await c.post("/fhir", json=bundle(), headers=bearer(Role.DASHBOARD))).status_code == 403
    assert NHS not in r.text


async def test_idempotency_key_on_fhir(sqlite_ingest):
    headers = {**PLATFORM, "Idempotency-Key": "fhir-1"}
    doc = bundle(obs(("L", "8867-4"), **qty(70, "/min")))
    first = await sqlite_ingest.client.post("/fhir", json=doc, headers=headers)
    again = await sqlite_ingest.client.post("/fhir", json=doc, headers=headers)
    assert again.json() == first.json() and len(await sqlite_ingest.outbox()) == 1
    other = await sqlite_ingest.client.post(
        "/fhir", json=bundle(obs(("L", "8867-4"), **qty(71, "/min"))), headers=headers)
    assert other.status_code == 409 and other.json()["issue"][0]["code"] == "conflict"


@pytest.mark.parametrize("raw", [
    b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": 1}]}',
    b'[]', b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType":'
    b' "Observation", "status": "final", "code": {"coding": [{"code": "a\\u0000"}]}}}]}',
    b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType":'
    b' "Observation", "status": "final", "code": {}, "valueQuantity": {"value": NaN}}}]}',
    b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType":'
    b' "Observation", "status": "final", "code": {}, "valueQuantity": {"value": 1e400}}}]}',
    b'\xff\xfe',
    b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType":'
    b' {"a": 1}}}, {"resource": {"resourceType": ["Patient"]}}]}',
])
async def test_hostile_fhir_is_4xx_never_5xx(sqlite_ingest, raw):
    r = await sqlite_ingest.client.post("/fhir", content=raw, headers=PLATFORM)
    assert 400 <= r.status_code < 500 or all(
        e["response"]["status"].startswith("4") for e in r.json()["entry"]), r.text
    assert r.headers["content-type"] == "application/fhir+json"
