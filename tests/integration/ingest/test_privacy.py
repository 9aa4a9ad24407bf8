"""No NHS number in any log record, outbox row, published message or response.

Everything runs with the root logger at DEBUG (SQL statements and their parameters included),
valid and invalid numbers in several spellings, native and FHIR, accepted and rejected.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.ingest.bootstrap import bootstrap, create_app
from shared.events import decode, topics
from shared.settings import load_settings
from tests.integration.ingest.conftest import NOW, PLATFORM, Capture, Ingest, eventually
from tests.integration.ingest.test_fhir import bundle, full_set, obs, qty
from tests.integration.ingest.test_native import SET

pytestmark = pytest.mark.integration

VALID = ["9434765919", "4010232137"]
INVALID = ["9434765918", "4010232138"]


def spellings(number: str) -> list[str]:
    return [number, f"{number[:3]} {number[3:6]} {number[6:]}",
            f"{number[:3]}-{number[3:6]}-{number[6:]}"]


async def test_no_nhs_number_anywhere(tmp_path):
    capture = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        answers, messages, outbox = await _run(tmp_path)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    assert len(messages) == len(outbox) >= 4
    haystack = "\n".join(capture.lines + answers + messages + outbox)
    assert "resident" in haystack and len(capture.lines) > 10
    assert sum("ObservationSetWithdrawn" in m for m in messages) == 6   # 3 spellings x 2 valid
    for number in VALID + INVALID:
        for spelled in spellings(number):
            assert spelled not in haystack, f"leaked {spelled!r}"


async def _run(tmp_path) -> tuple[list[str], list[str], list[str]]:
    runtime = bootstrap(load_settings("ingest", data_dir=tmp_path, relay_poll_seconds=0.01),
                        clock=lambda: NOW)
    async with LifespanManager(create_app(runtime)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            harness = Ingest(client, runtime, runtime.bus)
            await harness.site()
            answers = await _post_everything(client)
            rows = [str(r) for r in await harness.outbox()]
            consumer = runtime.bus.consumer("privacy-check", [topics.OBSERVATIONS])
            await consumer.start()

            async def drained():
                got = await consumer.getmany(max_records=1000, timeout=0.1)
                seen.extend(got)
                return len(seen) >= len(rows)
            seen: list = []
            await eventually(drained)
            await consumer.stop()
    return answers, [str(decode(m.value)) + m.key for m in seen], rows


async def _post_everything(client) -> list[str]:
    out = []
    for i, number in enumerate(VALID + INVALID):
        for j, spelled in enumerate(spellings(number)):
            body = {**SET, "nhs_number": spelled, "platform_set_id": f"p-{i}-{j}"}
            posted = await client.post("/observation-sets", json=body, headers=PLATFORM)
            out.append(posted.text)
            if posted.status_code == 201:   # withdrawn: its event names the resident too
                out.append((await client.delete(f"/observation-sets/{posted.json()['id']}",
                                                headers=PLATFORM)).text)
            out.append((await client.post("/residents/pseudonym", headers=PLATFORM, json={
                "nhs_number": spelled, "site_id": SET["site_id"]})).text)
        batch = [{**SET, "nhs_number": number, "platform_set_id": f"b-{i}"},
                 {**SET, "nhs_number": number, "spo2": 300}]
        out.append((await client.post("/observation-sets/batch", json={"items": batch},
                                      headers=PLATFORM)).text)
        resources = full_set()
        for r in resources:
            r["subject"]["identifier"]["value"] = number
        out.append((await client.post("/fhir", json=bundle(*resources), headers=PLATFORM)).text)
        single = obs(("L", "2708-6"), **qty(101, "%"))
        single["subject"]["identifier"]["value"] = number
        out.append((await client.post("/fhir/Observation", json=single,
                                      headers=PLATFORM)).text)
        amended = {**resources[4], "status": "amended", **qty(91, "{beats}/min")}
        out.append((await client.post("/fhir/Observation", json=amended,
                                      headers=PLATFORM)).text)
    return out
