"""Withdrawn observation sets: ObservationSetWithdrawn in, ScoreWithdrawn out, the flag gone,
the trend history without it. SQLite and PostgreSQL; every expected value is written by hand."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.scoring.consumers import apply_observations
from shared.auth import Role
from shared.bus.base import Record
from shared.events import encode, topics, wrap
from tests.integration.scoring.support import (
    ICB,
    OTHER_SITE,
    PSC,
    SITE,
    T0,
    observation,
    withdrawal,
)

pytestmark = pytest.mark.integration
H = timedelta(hours=1)
REPLACEMENT = uuid.UUID("0b6f4a52-7c1e-4d55-9f3a-2e8c1d7b6a90")
COUNTED = ("status", "total", "risk", "red_score", "claim_mismatch")
# Readings by hand (NORMAL scores 0 on every parameter):
HIGH_8 = {"respiration_rate": 25, "pulse": 131, "temperature_c": "39.1"}   # 3 + 3 + 2, high
HIGH_10 = {**HIGH_8, "systolic_bp": 100}                                      # + 2, high
LOW_4 = {"respiration_rate": 21, "pulse": 111}                                # 2 + 2, low
TOTAL_ROSE = "total rose by 2 or more within 24 hours"


async def test_withdrawal_takes_back_exactly_what_the_score_counted(scoring):
    # Consciousness V scores 3: total 3, a red score, low-medium and flagged; the client
    # claimed 1, a mismatch.
    obs = observation("p1_withdrawn", T0, consciousness="V", client_news2_total=1)
    stays = observation("p1_withdrawn", T0 - H, consciousness="C")   # flagged, not withdrawn
    await scoring.publish(stays)
    await scoring.submit(obs, events=2)
    [computed] = scoring.of_type("ScoreComputed", obs.observation_id)
    [flagged] = scoring.of_type("DeteriorationFlagged", obs.observation_id)
    [kept_flag] = scoring.of_type("DeteriorationFlagged", stays.observation_id)

    bst = timezone(timedelta(hours=1))
    await scoring.publish(withdrawal(obs, "amended", replaced_by=REPLACEMENT,
                                     withdrawn_at=datetime(2024, 3, 1, 14, 0, tzinfo=bst)))
    events = await scoring.events_for(obs.observation_id, 3)
    assert [e.type for e in events] == ["ScoreComputed", "DeteriorationFlagged", "ScoreWithdrawn"]
    withdrawn = events[2]
    assert withdrawn.subject == "p1_withdrawn" and withdrawn.source == "scoring"
    assert withdrawn.data == {
        "observation_id": str(obs.observation_id), "resident": "p1_withdrawn",
        "site_id": SITE, "icb_code": ICB, "psc_code": PSC, "taken_at": "2024-03-01T10:00:00Z",
        "withdrawn_at": "2024-03-01T14:00:00+01:00", "reason": "amended",
        "replaced_by": str(REPLACEMENT), "status": "scored", "total": 3, "risk": "low-medium",
        "red_score": True, "claim_mismatch": True, "flag_id": flagged.data["flag_id"]}
    assert {k: withdrawn.data[k] for k in COUNTED} == {k: computed.data[k] for k in COUNTED}
    assert (withdrawn.data["site_id"], withdrawn.data["taken_at"]) == (
        computed.data["site_id"], computed.data["taken_at"])

    r = await scoring.client.get(f"/sites/{SITE}/flags", headers=scoring.admin)
    assert [f["flag_id"] for f in r.json()] == [kept_flag.data["flag_id"]]
    assert r.json()[0]["withdrawal"] is None
    entry = await scoring.entry(obs)   # the record stays, with its withdrawal
    assert (entry["status"], entry["total"], entry["flag_id"]) == (
        "scored", 3, flagged.data["flag_id"])
    assert entry["withdrawal"] == {"withdrawn_at": "2024-03-01T13:00:00Z", "reason": "amended",
                                   "replaced_by": str(REPLACEMENT)}
    assert (await scoring.entry(stays))["withdrawal"] is None


async def test_a_second_withdrawal_publishes_nothing(scoring):
    obs = observation("p1_twice", T0, consciousness="V")
    await scoring.submit(obs, events=2)
    first = wrap(withdrawal(obs), source="/test/ingest")
    again = wrap(withdrawal(obs, "corrected", replaced_by=REPLACEMENT), source="/test/ingest")
    await scoring.publish(first, first)          # redelivered: the inbox drops it
    await scoring.publish(again)                 # the same set under a new event id
    sentinel = observation("p1_twice", T0 + H)   # same key: consumed after the withdrawals
    await scoring.submit(sentinel)
    assert [e.type for e in scoring.of_type(None, obs.observation_id)] == [
        "ScoreComputed", "DeteriorationFlagged", "ScoreWithdrawn"]
    [withdrawn] = scoring.of_type("ScoreWithdrawn", obs.observation_id)
    assert (withdrawn.data["reason"], withdrawn.data["replaced_by"]) == ("entered-in-error", None)
    entry = await scoring.entry(obs)
    assert entry["withdrawal"] == {"withdrawn_at": "2024-03-01T13:00:00Z",
                                   "reason": "entered-in-error", "replaced_by": None}


async def test_a_set_withdrawn_before_it_was_scored_is_never_scored(scoring):
    """Its ObservationRecorded was dead-lettered; the withdrawal comes, then the set is
    replayed: nothing was counted, so nothing is scored or published, and the set (the
    latest by taken-at, at another home) does not move the resident's scope there."""
    obs = observation("p1_unseen", T0 + 2 * H, site=OTHER_SITE, consciousness="V")  # 3, flag
    poison = json.loads(encode(wrap(obs, source="/test/ingest")))
    poison["data"]["consciousness"] = "Z"
    await scoring.bus.publish([Record(topics.OBSERVATIONS, "p1_unseen",
                                      json.dumps(poison).encode())])
    await scoring.publish(withdrawal(obs))
    await scoring.publish(withdrawal(obs, "corrected"))   # again, new event id: no change
    await scoring.publish(obs)                            # the set replayed
    sentinel = observation("p1_unseen", T0 + H, **LOW_4)   # 4: a rise of 4 over nothing
    entry = await scoring.submit(sentinel)
    assert scoring.runtime.consumers[0].stats.dead_letters == 1
    assert scoring.of_type(None, obs.observation_id) == []
    assert (entry["total"], entry["trend"], entry["flag_id"]) == (4, [], None)
    home = scoring.headers(Role.PLATFORM, "carer-1", sites=[SITE])
    r = await scoring.client.get("/residents/p1_unseen/scores", headers=home)
    assert r.status_code == 200, r.text
    assert [s["observation_id"] for s in r.json()] == [str(sentinel.observation_id)]
    r = await scoring.client.get("/residents/p1_unseen/scores", headers=scoring.admin)
    assert [s["observation_id"] for s in r.json()] == [str(sentinel.observation_id)]


async def test_recorded_and_withdrawn_in_one_batch(scoring):
    """One handler call, in arrival order: score, then withdraw, then score the rest
    against the history without the withdrawn score."""
    resident = "p1_one_batch"
    kept = observation(resident, T0)                                # 0, low
    gone = observation(resident, T0 + H, consciousness="V")         # 3, low-medium, flagged
    never = observation(resident, T0 + 2 * H, consciousness="V")    # withdrawn first
    after = observation(resident, T0 + 3 * H, respiration_rate=21, pulse=91)   # 2 + 1, low
    batch = [kept, gone, withdrawal(gone), gone, withdrawal(never), never, after]
    async with scoring.runtime.db.transaction() as session:
        await apply_observations(session, [(wrap(e, source="/test/ingest"), e) for e in batch])

    await scoring.events_for(after.observation_id, 2)
    events = await scoring.events_for(gone.observation_id, 3)
    assert [e.type for e in events] == ["ScoreComputed", "DeteriorationFlagged", "ScoreWithdrawn"]
    assert (events[2].data["total"], events[2].data["risk"]) == (3, "low-medium")
    assert events[2].data["flag_id"] == events[1].data["flag_id"]
    assert scoring.of_type(None, never.observation_id) == []
    # ``after`` compared with ``kept`` (0): a rise of 3. Against ``gone`` (3, low-medium)
    # it would be no rise and no flag.
    entry = await scoring.entry(after)
    assert (entry["total"], entry["trend"]) == (3, [TOTAL_ROSE])
    [flag] = scoring.of_type("DeteriorationFlagged", after.observation_id)
    assert flag.data["reasons"] == ["deterioration trend", TOTAL_ROSE]
    r = await scoring.client.get(f"/residents/{resident}/scores", headers=scoring.admin)
    assert [s["observation_id"] for s in r.json()] == [
        str(after.observation_id), str(gone.observation_id), str(kept.observation_id)]


async def test_a_reading_after_a_withdrawn_score_is_compared_with_the_one_before(scoring):
    """0 at T0, 8 (high) at T0+1h, 4 (low) at T0+2h: with the 8 withdrawn, the 4 is a rise of
    4 within 24 h over the 0 and flags; with the 8 standing it is a fall and does not. A
    reading scored before the withdrawal (10 at T0+5h, a rise of 2 over the 8) keeps its flag."""
    for resident, withdrawn in (("p1_trend_withdrawn", True), ("p1_trend_kept", False)):
        base = observation(resident, T0)
        high = observation(resident, T0 + H, **HIGH_8)
        earlier_flagged = observation(resident, T0 + 5 * H, **HIGH_10)
        low = observation(resident, T0 + 2 * H, **LOW_4)
        await scoring.publish(base, high)
        entry = await scoring.submit(earlier_flagged, events=2)
        assert (entry["total"], entry["trend"]) == (10, [TOTAL_ROSE])
        if withdrawn:
            await scoring.publish(withdrawal(high))
            await scoring.events_for(high.observation_id, 3)
        await scoring.publish(low)

        if not withdrawn:   # the control: compared with the 8, nothing fires
            entry = await scoring.scored(low)
            assert (entry["total"], entry["risk"], entry["trend"], entry["flag_id"]) == (
                4, "low", [], None)
            continue
        entry = await scoring.scored(low, events=2)
        assert (entry["total"], entry["risk"], entry["trend"]) == (4, "low", [TOTAL_ROSE])
        [flag] = scoring.of_type("DeteriorationFlagged", low.observation_id)
        assert flag.data["reasons"] == ["deterioration trend", TOTAL_ROSE]
        # No re-scoring: the reading compared with the 8 keeps its trend and open flag.
        assert [e.type for e in scoring.of_type(None, earlier_flagged.observation_id)] == [
            "ScoreComputed", "DeteriorationFlagged"]
        kept = await scoring.entry(earlier_flagged)
        assert (kept["trend"], kept["withdrawal"]) == ([TOTAL_ROSE], None)
        [kept_flag] = scoring.of_type("DeteriorationFlagged", earlier_flagged.observation_id)
        assert kept_flag.data["reasons"] == [
            "risk band low-medium or worse", "deterioration trend", TOTAL_ROSE]
        r = await scoring.client.get(f"/sites/{SITE}/flags", headers=scoring.admin)
        assert sorted(f["observation_id"] for f in r.json()
                      if f["resident"] == resident) == sorted(
            [str(earlier_flagged.observation_id), str(low.observation_id)])


async def test_a_rejected_score_is_withdrawn_too(scoring):
    bad = observation("p1_rejected", T0, spo2=101)
    await scoring.submit(bad)
    await scoring.publish(withdrawal(bad))
    events = await scoring.events_for(bad.observation_id, 2)
    assert [e.type for e in events] == ["ScoreComputed", "ScoreWithdrawn"]
    data = events[1].data
    assert (data["status"], data["total"], data["risk"], data["red_score"],
            data["claim_mismatch"], data["flag_id"]) == ("rejected", None, None, False, False,
                                                         None)
    assert (data["reason"], data["replaced_by"]) == ("entered-in-error", None)
    entry = await scoring.entry(bad)
    assert (entry["status"], entry["withdrawal"]["reason"]) == ("rejected", "entered-in-error")


async def test_a_withdrawn_flag_cannot_be_acknowledged(scoring):
    acked = observation("p1_ack", T0, consciousness="V")
    open_ = observation("p1_ack", T0 + H, consciousness="V")
    await scoring.publish(acked)
    await scoring.submit(open_, events=2)
    await scoring.events_for(acked.observation_id, 2)
    [acked_flag] = scoring.of_type("DeteriorationFlagged", acked.observation_id)
    [open_flag] = scoring.of_type("DeteriorationFlagged", open_.observation_id)
    carer = scoring.headers(Role.PLATFORM, "carer-1", sites=[SITE])
    path = f"/flags/{acked_flag.data['flag_id']}/acknowledge"
    assert (await scoring.client.post(path, headers=carer)).status_code == 200

    await scoring.publish(withdrawal(acked), withdrawal(open_, "amended", replaced_by=REPLACEMENT))
    await scoring.events_for(open_.observation_id, 3)
    outsider = scoring.headers(Role.PLATFORM, "carer-2", sites=[OTHER_SITE])
    assert (await scoring.client.post(path, headers=outsider)).status_code == 403  # scope first
    for flag, reason, replaced in ((acked_flag, "entered-in-error", None),
                                   (open_flag, "amended", str(REPLACEMENT))):
        flag_id = flag.data["flag_id"]
        r = await scoring.client.post(f"/flags/{flag_id}/acknowledge", headers=carer)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert (body["status"], body["title"]) == (409, "Conflict")
        assert "withdrawn" in body["detail"]
        assert body["errors"] == [{"field": "flag_id", "value": flag_id,
                                   "reason": f"withdrawn with its observation set ({reason})"}]
        assert body["withdrawal"] == {"withdrawn_at": "2024-03-01T13:00:00Z",
                                      "reason": reason, "replaced_by": replaced}
    r = await scoring.client.get(f"/sites/{SITE}/flags", headers=carer)
    assert r.status_code == 200 and r.json() == []
    # Still readable one by one, withdrawal and acknowledgement shown; in scope only.
    one = await scoring.client.get(f"/flags/{acked_flag.data['flag_id']}", headers=carer)
    assert one.status_code == 200, one.text
    assert (one.json()["acknowledged_by"], one.json()["withdrawal"]) == ("carer-1", {
        "withdrawn_at": "2024-03-01T13:00:00Z", "reason": "entered-in-error",
        "replaced_by": None})
    r = await scoring.client.get(f"/flags/{open_flag.data['flag_id']}", headers=outsider)
    assert r.status_code == 403
    r = await scoring.client.get(f"/flags/{uuid.uuid4()}", headers=carer)
    assert r.status_code == 404
