"""Native batch: per-item results; one bad item never sinks the others (both dialects)."""

from __future__ import annotations

import pytest

from tests.integration.ingest.conftest import PLATFORM
from tests.integration.ingest.test_native import NHS, SET

pytestmark = pytest.mark.integration


def item(n: int, **change) -> dict:
    return {**SET, "platform_set_id": f"b-{n}", "pulse": 60 + n % 40, **change}


async def test_batch_mixes_accepted_duplicate_rejected(ingest):
    await ingest.client.post("/observation-sets", json=item(0), headers=PLATFORM)
    items = [item(0), item(1), item(2, spo2=120), {"nope": 1}, item(1),
             item(1, pulse=99), item(3, site_id="1-404")]
    r = await ingest.client.post("/observation-sets/batch", json={"items": items},
                                 headers=PLATFORM)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 2, 4)
    res = body["results"]
    assert [x["outcome"] for x in res] == ["duplicate", "accepted", "rejected", "rejected",
                                           "duplicate", "rejected", "rejected"]
    assert res[4]["id"] == res[1]["id"]
    assert res[2]["errors"] == [{"field": "spo2", "value": "120",
                                 "reason": "must be between 40 and 100"}]
    assert {e["field"] for e in res[3]["errors"]} >= {"nope", "site_id", "taken_at"}
    assert res[5]["status"] == 409 and res[5]["errors"][0]["field"] == "platform_set_id"
    assert res[6]["errors"][0]["field"] == "site_id"
    events = await ingest.outbox()
    assert len(events) == 2 and NHS not in str(events)


async def test_batch_of_1000_records_each_once_and_retry_is_all_duplicates(ingest):
    items = [item(n) for n in range(1000)]
    r = await ingest.client.post("/observation-sets/batch", json={"items": items},
                                 headers=PLATFORM)
    assert r.json()["accepted"] == 1000
    again = await ingest.client.post("/observation-sets/batch", json={"items": items},
                                     headers=PLATFORM)
    assert again.json()["duplicates"] == 1000
    assert [x["id"] for x in again.json()["results"]] == [x["id"] for x in r.json()["results"]]
    assert len(await ingest.outbox()) == 1000


async def test_batch_limits(sqlite_ingest):
    too_many = {"items": [item(n) for n in range(1001)]}
    r = await sqlite_ingest.client.post("/observation-sets/batch", json=too_many,
                                        headers=PLATFORM)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "items"
    r = await sqlite_ingest.client.post("/observation-sets/batch", json={"items": []},
                                        headers=PLATFORM)
    assert r.status_code == 422


async def test_batch_idempotency_key_replays_whole_answer(sqlite_ingest):
    headers = {**PLATFORM, "Idempotency-Key": "batch-1"}
    items = [{k: v for k, v in item(n).items() if k != "platform_set_id"} for n in range(3)]
    first = await sqlite_ingest.client.post("/observation-sets/batch", json={"items": items},
                                            headers=headers)
    again = await sqlite_ingest.client.post("/observation-sets/batch", json={"items": items},
                                            headers=headers)
    assert again.json() == first.json() and first.json()["accepted"] == 3
    assert len(await sqlite_ingest.outbox()) == 3
    other = await sqlite_ingest.client.post("/observation-sets/batch",
                                            json={"items": items[:2]}, headers=headers)
    assert other.status_code == 409


@pytest.mark.parametrize("body", [b'{"items": [', b"not json", b'{"items": []}'])
async def test_batch_checks_the_token_before_the_body(sqlite_ingest, body):
    r = await sqlite_ingest.client.post("/observation-sets/batch", content=body,
                                        headers={"content-type": "application/json"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


async def test_a_malformed_batch_body_names_where_it_broke(sqlite_ingest):
    r = await sqlite_ingest.client.post("/observation-sets/batch", content=b'{"items": [',
                                        headers={**PLATFORM, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "body", "reason": "the body is not valid JSON (at character 11): "
                                    "Expecting value"}]
    r = await sqlite_ingest.client.post("/observation-sets/batch", json={"items": [], "x": 1},
                                        headers={**PLATFORM, "Idempotency-Key": "a b"})
    fields = {e["field"] for e in r.json()["errors"]}
    assert r.status_code == 422 and {"header.Idempotency-Key", "items", "x"} <= fields, fields
