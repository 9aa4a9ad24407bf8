"""Stage submissions over HTTP: outcomes, rejections, transitions, events, history, flags."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from shared.outbox import OUTBOX
from shared.quarters import local_date
from tests.integration.adoption.conftest import (
    ADMIN,
    CARE_HOMES,
    DASHBOARD,
    HOME,
    LONDON,
    OTHER_HOME,
    SW,
    bearer,
)

pytestmark = pytest.mark.integration


def sub(stage: int, applies_from: str, tool: str | None = "RESTORE2", site: str = HOME,
        **extra) -> dict:
    return {"site_id": site, "programme": CARE_HOMES, "tool": tool, "stage": stage,
            "applies_from": applies_from, **extra}


async def post(client, body, headers=SW, dry_run=False) -> dict:
    r = await client.post(f"/stages?dry_run={str(dry_run).lower()}", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def stage_events(svc) -> list[tuple[str, dict]]:
    async with svc.runtime.db.session() as session:
        rows = (await session.execute(
            select(OUTBOX.c.key, OUTBOX.c.payload).where(OUTBOX.c.event_type == "StageChanged")
            .order_by(OUTBOX.c.seq))).all()
    return [(key, json.loads(payload)["data"]) for key, payload in rows]


async def test_one_submission_is_applied_recorded_and_published(svc):
    before = datetime.now(UTC)
    body = await post(svc.client, sub(3, "2022-04-01", note="first training done"))
    row = body["rows"][0]
    assert (body["applied"], row["row"], row["outcome"]) == (1, 1, "applied")
    assert row["transition"] == {"from_tool": None, "from_stage": 0,
                                 "to_tool": "NEWS2 and soft signs", "to_stage": 3,
                                 "is_correction": False, "flags": []}
    [(key, event)] = await stage_events(svc)
    assert key == HOME
    assert {k: event[k] for k in ("site_id", "icb_code", "psc_code", "programme", "from_tool",
                                  "from_stage", "to_tool", "to_stage", "applies_from",
                                  "reporter", "is_correction", "flags")} == {
        "site_id": HOME, "icb_code": "QJK", "psc_code": "SW", "programme": CARE_HOMES,
        "from_tool": None, "from_stage": 0, "to_tool": "NEWS2 and soft signs", "to_stage": 3,
        "applies_from": "2022-04-01", "reporter": "psc-sw-user", "is_correction": False,
        "flags": []}
    assert event["submission_id"] == row["submission_id"]
    assert before <= datetime.fromisoformat(event["reported_at"]) <= datetime.now(UTC)
    history = (await svc.client.get(f"/sites/{HOME}/stages", headers=SW)).json()["history"]
    assert [(h["stage"], h["note"], h["reporter"]) for h in history] == [
        (3, "first training done", "psc-sw-user")]


async def test_every_rejection_reason_over_http(svc):
    closing = {"site_id": OTHER_HOME, "name": "42 East Wonford Hill", "icb_code": "QJK",
               "beds": 6, "nursing": False, "opened_on": "2016-01-15", "closed_on": "2022-12-31"}
    assert (await svc.client.post("/sites", json=closing, headers=ADMIN)).status_code == 200
    await svc.client.post("/sites", headers=ADMIN, json={"site_id": "1-900", "name": "London",
                                                         "icb_code": "QMJ"})
    future = (datetime.now(UTC) + timedelta(days=3)).date()
    today = local_date(datetime.now(UTC))
    body = await post(svc.client, [
        sub(3, "2022-04-01", site="1-586849022"),
        sub(3, "2022-04-01", site="1-900"),
        sub(3, "2023-01-01", site=OTHER_HOME),
        sub(9, "2022-04-01"),
        {**sub(3, "2022-04-01"), "programme": "maternity"},
        sub(3, "2022-04-01", tool="BOOST"),
        sub(3, future.isoformat()),
    ])
    assert (body["applied"], body["rejected"]) == (0, 7)
    assert [(r["row"], r["field"], r["reason"]) for r in body["rows"]] == [
        (1, "site_id", "unknown site code '1-586849022' (closest codes: 1-5868490225)"),
        (2, "site_id", "site 1-900 is in PSC UCLP, outside this token's scope"),
        (3, "applies_from", f"site {OTHER_HOME} closed on 2022-12-31, on or before applies_from"
                            " 2023-01-01"),
        (4, "stage", "stage must be 0-7, got 9"),
        (5, "programme", f"unknown programme 'maternity'; known programmes: {CARE_HOMES}"),
        (6, "tool", f"unknown tool 'BOOST' for programme {CARE_HOMES}; known tools: NEWS2,"
                    " NEWS2 and soft signs, Soft signs, Stop and Watch, Tool undecided"),
        (7, "applies_from", f"applies_from {future} is in the future (today is {today} in"
                            " London)"),
    ]
    assert body["rows"][0]["suggestions"] == [HOME]
    assert await stage_events(svc) == []


async def test_a_name_is_never_taken_for_a_code(svc):
    body = await post(svc.client, sub(3, "2022-04-01", site="27 Little Week"))
    assert body["rows"][0]["reason"] == "unknown site code '27 Little Week' (no close match)"


async def test_dry_run_judges_like_the_real_thing_and_writes_nothing(svc):
    rows = [sub(3, "2022-04-01"), sub(5, "2022-10-01"), sub(5, "2022-12-01")]
    dry = await post(svc.client, rows, dry_run=True)
    assert [r["outcome"] for r in dry["rows"]] == ["applied", "applied", "unchanged"]
    assert dry["rows"][1]["transition"]["from_stage"] == 3  # sees the batch's earlier row
    assert await stage_events(svc) == []
    assert (await svc.client.get(f"/sites/{HOME}/stages", headers=SW)).json()["history"] == []
    real = await post(svc.client, rows)
    strip = [(r["outcome"], r["transition"]) for r in real["rows"]]
    assert strip == [(r["outcome"], r["transition"]) for r in dry["rows"]]
    assert real["dry_run"] is False and len(await stage_events(svc)) == 2


async def test_resubmitting_the_position_in_force_is_unchanged_and_silent(svc):
    await post(svc.client, sub(4, "2022-04-01"))
    again = await post(svc.client, sub(4, "2022-06-01", tool="news2 and soft signs"))
    assert (again["unchanged"], again["rows"][0]["submission_id"]) == (1, None)
    assert len(await stage_events(svc)) == 1


async def test_an_earlier_dated_report_is_a_correction_and_history_is_by_applies_from(svc):
    await post(svc.client, sub(4, "2023-01-01"))
    late = await post(svc.client, sub(2, "2022-07-01", tool=None))
    assert late["rows"][0]["transition"] == {
        "from_tool": None, "from_stage": 0, "to_tool": None, "to_stage": 2,
        "is_correction": True, "flags": ["correction"]}
    history = (await svc.client.get(f"/sites/{HOME}/stages", headers=DASHBOARD)).json()
    assert [(h["applies_from"], h["stage"], h["is_correction"]) for h in history["history"]] == [
        ("2022-07-01", 2, True), ("2023-01-01", 4, False)]
    events = [e for _, e in await stage_events(svc)]
    assert [(e["to_stage"], e["is_correction"], e["flags"]) for e in events] == [
        (4, False, []), (2, True, ["correction"])]


async def test_regression_and_unevidenced_sustainment_are_accepted_and_flagged(svc):
    body = await post(svc.client, [
        sub(5, "2022-04-01"), sub(3, "2022-07-01"),                   # regression
        sub(7, "2022-10-01"),                                       # 5 was not held 12 months
        sub(5, "2021-01-01", site=OTHER_HOME), sub(7, "2022-01-01", site=OTHER_HOME),  # held
    ])
    assert [r["transition"]["flags"] for r in body["rows"]] == [
        [], ["regression"], ["sustainment not evidenced"], [], []]
    flags = (await svc.client.get("/stages/flags", headers=SW)).json()
    assert [(f["site_id"], f["applies_from"], f["flags"]) for f in flags] == [
        (HOME, "2022-10-01", ["sustainment not evidenced"]),
        (HOME, "2022-07-01", ["regression"])]
    only = await svc.client.get("/stages/flags?flag=regression", headers=DASHBOARD)
    assert [f["stage"] for f in only.json()] == [3]
    assert (await svc.client.get("/stages/flags", headers=LONDON)).json() == []


async def test_positions_of_a_psc_at_a_quarter_end(svc):
    await post(svc.client, [sub(3, "2022-04-01"), sub(5, "2023-04-01"),
                            sub(6, "2023-02-01", tool="NEWS2", site=OTHER_HOME)])
    r = await svc.client.get("/pscs/SW/positions?quarter=2022/23 Q4", headers=SW)
    assert r.status_code == 200
    by_site = {p["site_id"]: p for p in r.json()}
    assert len(by_site) == 728
    assert (by_site[HOME]["tool"], by_site[HOME]["stage"], by_site[HOME]["applies_from"]) == (
        "NEWS2 and soft signs", 3, "2022-04-01")
    assert (by_site[OTHER_HOME]["tool"], by_site[OTHER_HOME]["stage"]) == ("NEWS2", 6)
    assert by_site["1-179569147"] == {
        "site_id": "1-179569147", "name": "55 Langaton Lane", "icb_code": "QJK",
        "programme": CARE_HOMES, "tool": None, "stage": 0, "applies_from": None}
    now = {p["site_id"]: p["stage"] for p in
           (await svc.client.get("/pscs/SW/positions", headers=DASHBOARD)).json()}
    assert now[HOME] == 5
    bad = await svc.client.get("/pscs/SW/positions?quarter=2022/24 Q4", headers=SW)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "quarter"
    assert (await svc.client.get("/pscs/NOPE/positions", headers=ADMIN)).status_code == 404
    later = await svc.client.get("/pscs/SW/positions?quarter=2099/00 Q1", headers=SW)
    assert later.json()["errors"] == [{"field": "quarter", "value": "2099/00 Q1",
                                       "reason": "quarter 2099/00 Q1 has not started"}]


async def test_reporter_is_the_token_subject_never_the_body(svc):
    r = await svc.client.post("/stages", json={**sub(3, "2022-04-01"), "reporter": "someone"},
                              headers=SW)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "0.reporter"
    await post(svc.client, sub(3, "2022-04-01"), headers=bearer("admin", sub="analyst-7"))
    [(_, event)] = await stage_events(svc)
    assert event["reporter"] == "analyst-7"


async def test_a_json_batch_is_bounded(client):
    too_many = [sub(3, "2022-04-01")] * 5001
    r = await client.post("/stages", json=too_many, headers=SW)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert (await client.post("/stages", json=[], headers=SW)).status_code == 422
