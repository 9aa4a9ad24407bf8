"""Observations in through the bus; scores, flags and events out. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Role
from shared.events import wrap
from tests.integration.scoring.support import ICB, OTHER_SITE, PSC, SITE, T0, observation

pytestmark = pytest.mark.integration
H = timedelta(hours=1)


async def test_every_observation_gets_a_score_computed_event(scoring):
    obs = observation("p1_normal", T0, client_news2_total=0)
    entry = await scoring.submit(obs)
    assert (entry["status"], entry["total"], entry["risk"], entry["scale"]) == ("scored", 0,
                                                                                "low", 1)
    assert entry["sub_scores"] == {"respiration_rate": 0, "spo2": 0, "air_or_oxygen": 0,
                                   "systolic_bp": 0, "pulse": 0, "consciousness": 0,
                                   "temperature": 0}
    assert entry["claim"] == "match" and entry["claim_mismatch"] is False
    assert entry["response"].startswith("Low risk")
    [event] = scoring.of_type("ScoreComputed", obs.observation_id)
    assert event.subject == "p1_normal" and event.data["total"] == 0
    assert event.data["site_id"] == SITE and event.data["psc_code"] == PSC
    assert scoring.of_type("DeteriorationFlagged", obs.observation_id) == []


async def test_out_of_order_arrival_uses_taken_at_order(scoring):
    first = observation("p1_late", T0)  # 0, low
    third = observation("p1_late", T0 + 4 * H, respiration_rate=21, pulse=111,
                        temperature_c="38.1")  # 2 + 2 + 1 = 5, medium
    await scoring.publish(first, third)
    later = await scoring.scored(third, events=2)
    assert later["trend"] == ["risk band rose", "total rose by 2 or more within 24 hours"]

    # Taken between the two, arriving last: 2 + 1 = 3, low. Against its true predecessor
    # (0 at T0) the total rose by 3; against the newest (5) it would be a fall.
    second = observation("p1_late", T0 + 2 * H, respiration_rate=21, pulse=91)
    await scoring.publish(second)
    middle = await scoring.scored(second, events=2)
    assert (middle["total"], middle["risk"]) == (3, "low")
    assert middle["trend"] == ["total rose by 2 or more within 24 hours"]
    [flag] = scoring.of_type("DeteriorationFlagged", second.observation_id)
    assert flag.data["reasons"] == ["deterioration trend",
                                    "total rose by 2 or more within 24 hours"]
    # The later reading is not re-assessed or re-flagged.
    assert len(scoring.of_type("DeteriorationFlagged", third.observation_id)) == 1
    r = await scoring.client.get("/residents/p1_late/scores", headers=scoring.admin)
    assert [s["total"] for s in r.json()] == [5, 3, 0]  # newest taken first


async def test_out_of_order_within_one_batch(scoring):
    later = observation("p1_batch", T0 + 3 * H, respiration_rate=21, pulse=91)  # 3
    earlier = observation("p1_batch", T0)  # 0, arrives second
    await scoring.publish(later, earlier)
    assert (await scoring.scored(earlier))["trend"] == []
    entry = await scoring.entry(later)  # scored before its predecessor arrived: no trend
    assert entry["trend"] == [] and entry["total"] == 3


async def test_redelivery_and_republication_score_once(scoring):
    obs = observation("p1_dup", T0, consciousness="V")  # red score: flagged
    envelope = wrap(obs, source="/test/ingest")
    again_other_id = wrap(obs, source="/test/ingest")  # same observation, new event id
    await scoring.publish(envelope, envelope, again_other_id)
    sentinel = observation("p1_dup", T0 + H)  # same key: consumed after the duplicates
    await scoring.publish(envelope)
    await scoring.publish(sentinel)
    await scoring.scored(sentinel)
    assert len(scoring.of_type("ScoreComputed", obs.observation_id)) == 1
    assert len(scoring.of_type("DeteriorationFlagged", obs.observation_id)) == 1
    r = await scoring.client.get("/residents/p1_dup/scores", headers=scoring.admin)
    assert len(r.json()) == 2


async def test_scale_2_only_through_a_clinicians_setting(scoring):
    resident = "p1_copd"
    device_says_2 = observation(resident, T0, spo2=88, spo2_scale_claim=2)
    entry = await scoring.submit(device_says_2, events=2)
    assert (entry["scale"], entry["sub_scores"]["spo2"], entry["risk"]) == (1, 3, "low-medium")

    path = f"/residents/{resident}/spo2-scale"
    body = {"scale": 2, "reason": "COPD: respiratory team prescribed 88-92 %"}
    for role in (Role.PLATFORM, Role.PSC, Role.DASHBOARD):
        denied = await scoring.client.put(path, json=body,
                                          headers=scoring.headers(role, sites=[SITE]))
        assert denied.status_code == 403, role
    outside = scoring.headers(Role.CLINICIAN, "dr-elsewhere", sites=["1-999"])
    assert (await scoring.client.put(path, json=body, headers=outside)).status_code == 403
    clinician = scoring.headers(Role.CLINICIAN, "dr-jones", sites=[SITE])
    r = await scoring.client.put(path, json=body, headers=clinician)
    assert r.status_code == 200, r.text
    assert (r.json()["scale"], r.json()["set_by"]) == (2, "dr-jones")
    assert r.json()["reason"].startswith("COPD")

    after = observation(resident, datetime.now(UTC) + timedelta(seconds=1), spo2=88)
    entry = await scoring.submit(after)
    assert (entry["scale"], entry["sub_scores"]["spo2"], entry["total"]) == (2, 0, 0)

    cleared = await scoring.client.delete(path, params={"reason": "reviewed"}, headers=clinician)
    assert cleared.status_code == 200 and cleared.json()["scale"] == 1
    back = observation(resident, datetime.now(UTC) + timedelta(seconds=2), spo2=88)
    assert (await scoring.submit(back, events=2))["scale"] == 1


async def test_unknown_resident_scale_setting_is_404(scoring):
    r = await scoring.client.put("/residents/p1_nobody/spo2-scale",
                                 json={"scale": 2, "reason": "x"}, headers=scoring.admin)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_scale_2_set_before_the_first_reading_names_the_site_and_applies(scoring):
    """Before scoring has seen a resident, a clinician of the home caring for them names it;
    the first reading is then scored on scale 2. Nobody else sees or changes the setting."""
    resident, path = "p1_admitted", "/residents/p1_admitted/spo2-scale"
    body = {"scale": 2, "reason": "COPD: discharge letter prescribes 88-92 %"}
    clinician = scoring.headers(Role.CLINICIAN, "dr-jones", sites=[SITE])
    unnamed = await scoring.client.put(path, json=body, headers=clinician)
    assert unnamed.status_code == 404
    assert unnamed.json()["errors"][0]["field"] == "site_id"
    elsewhere = scoring.headers(Role.CLINICIAN, "dr-elsewhere", sites=[OTHER_SITE])
    by_icb = scoring.headers(Role.CLINICIAN, "dr-icb", icbs=[ICB])   # no site, no ICB known
    for outsider in (elsewhere, by_icb):
        r = await scoring.client.put(path, json={**body, "site_id": SITE}, headers=outsider)
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "site_id"
    r = await scoring.client.put(path, json={**body, "site_id": SITE}, headers=clinician)
    assert r.status_code == 200, r.text
    assert (r.json()["scale"], r.json()["set_by"], r.json()["site_id"]) == (2, "dr-jones", SITE)
    assert (await scoring.client.get(path, headers=clinician)).json()["scale"] == 2
    assert (await scoring.client.get(path, headers=elsewhere)).status_code == 403
    hijack = await scoring.client.put(path, json={**body, "site_id": OTHER_SITE},
                                      headers=elsewhere)   # a site is named: theirs holds it
    assert hijack.status_code == 403 and hijack.json()["errors"][0]["value"] == SITE

    first = observation(resident, datetime.now(UTC) + timedelta(seconds=1), spo2=88)
    entry = await scoring.submit(first)
    assert (entry["scale"], entry["sub_scores"]["spo2"], entry["total"]) == (2, 0, 0)
    # seen now: scope comes from the readings, and a site named in the request is not needed
    cleared = await scoring.client.delete(path, params={"reason": "reviewed"},
                                          headers=clinician)
    assert cleared.status_code == 200
    assert (cleared.json()["scale"], cleared.json()["site_id"]) == (1, None)


async def test_client_total_is_a_claim_and_a_mismatch_is_flagged(scoring):
    # NHS FHIR examples score 37.5 degC as 1; it scores 0 on the RCP chart.
    obs = observation("p1_claim", T0, temperature_c="37.5", client_news2_total=1)
    entry = await scoring.submit(obs)
    assert (entry["total"], entry["client_total"], entry["claim"]) == (0, 1, "mismatch")
    assert entry["claim_mismatch"] is True
    [event] = scoring.of_type("ScoreComputed", obs.observation_id)
    assert event.data["claim_mismatch"] is True and event.data["client_total"] == 1


async def test_incomplete_set_has_no_total_and_names_what_is_missing(scoring):
    obs = observation("p1_partial", T0, pulse=None, temperature_c=None)
    entry = await scoring.submit(obs)
    assert (entry["total"], entry["risk"], entry["monitoring"]) == (None, None, None)
    assert entry["missing"] == ["pulse", "temperature"]
    assert "pulse, temperature" in entry["response"]
    [event] = scoring.of_type("ScoreComputed", obs.observation_id)
    assert event.data["total"] is None and event.data["missing"] == ["pulse", "temperature"]


async def test_soft_signs_alone_raise_a_flag_that_can_be_acknowledged(scoring):
    nothing = {k: None for k in ("respiration_rate", "spo2", "on_oxygen", "systolic_bp",
                                 "pulse", "consciousness", "temperature_c")}
    obs = observation("p1_mini", T0, soft_signs=("R2-CONFUSION", "R2-EATING"), **nothing)
    await scoring.publish(obs)
    await scoring.events_for(obs.observation_id, 2)
    [flagged] = scoring.of_type("DeteriorationFlagged", obs.observation_id)
    assert flagged.data["reasons"] == ["soft signs present"] and flagged.data["total"] is None

    carer = scoring.headers(Role.PLATFORM, "carer-1", sites=[SITE])
    r = await scoring.client.get(f"/sites/{SITE}/flags", headers=carer)
    assert [f["flag_id"] for f in r.json()] == [flagged.data["flag_id"]]
    ack = await scoring.client.post(f"/flags/{flagged.data['flag_id']}/acknowledge",
                                    headers=carer)
    assert ack.status_code == 200, ack.text
    assert ack.json()["acknowledged_by"] == "carer-1" and ack.json()["acknowledged_at"]
    assert (await scoring.client.get(f"/sites/{SITE}/flags", headers=carer)).json() == []


async def test_implausible_values_are_recorded_as_rejected_never_scored(scoring):
    bad = observation("p1_bad", T0, spo2=101, soft_signs=("NOT-A-CODE",))
    good = observation("p1_bad", T0 + H)
    await scoring.publish(bad)
    await scoring.submit(good)
    entry = await scoring.entry(bad)
    assert (entry["status"], entry["total"], entry["sub_scores"]) == ("rejected", None, None)
    assert [e["field"] for e in entry["rejection"]] == ["spo2", "soft_signs"]
    # ScoreComputed is published for every observation; a rejection carries no score
    [event] = scoring.of_type("ScoreComputed", bad.observation_id)
    assert event.schemaversion == 2
    data = event.data
    assert (data["status"], data["scale"], data["total"], data["risk"], data["sub_scores"]) == (
        "rejected", None, None, None, {})
    assert [(r["field"], r["value"]) for r in data["rejection"]] == [
        ("spo2", "101"), ("soft_signs", "NOT-A-CODE")]
    assert scoring.of_type("DeteriorationFlagged", bad.observation_id) == []
    [ok] = scoring.of_type("ScoreComputed", good.observation_id)
    assert (ok.data["status"], ok.data["rejection"]) == ("scored", [])


async def test_taken_at_offsets_are_ordered_as_instants(scoring):
    from datetime import timezone

    bst = timezone(timedelta(hours=1))
    base = observation("p1_bst", T0)  # 10:00Z, total 0
    rise = observation("p1_bst", datetime(2024, 3, 1, 11, 30, tzinfo=bst),  # 10:30Z
                       respiration_rate=21, pulse=91)  # 3
    await scoring.publish(base)
    await scoring.scored(base)
    entry = await scoring.submit(rise, events=2)
    assert entry["trend"] == ["total rose by 2 or more within 24 hours"]
    assert entry["taken_at"].startswith("2024-03-01T10:30:00")
