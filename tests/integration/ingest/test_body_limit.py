"""Request bodies over MANDET_MAX_BODY_BYTES are refused with 413 before they are held whole."""

from __future__ import annotations

import json

import pytest

from tests.integration.ingest.conftest import PLATFORM, running
from tests.integration.ingest.test_native import SET

pytestmark = pytest.mark.integration
LIMIT = 4_000


@pytest.fixture
async def small(tmp_path):
    async with running(data_dir=tmp_path, max_body_bytes=LIMIT) as harness:
        yield harness


def batch(n: int) -> bytes:
    return json.dumps({"items": [{**SET, "platform_set_id": f"s-{i}"} for i in range(n)]}
                      ).encode()


async def test_a_declared_length_over_the_limit_is_413_problem_json(small):
    body = batch(20)
    assert len(body) > LIMIT
    r = await small.client.post("/observation-sets/batch", content=body,
                                headers={**PLATFORM, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == (f"the request body is larger than {LIMIT} bytes "
                                  "(MANDET_MAX_BODY_BYTES)")
    assert await small.outbox() == []


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(small):
    async def chunks():
        for _ in range(10):
            yield b" " * 1_000

    r = await small.client.post("/observation-sets", content=chunks(),
                                headers={**PLATFORM, "Content-Type": "application/json"})
    assert r.status_code == 413


async def test_fhir_routes_answer_413_as_an_operation_outcome(small):
    r = await small.client.post("/fhir", content=b"{" + b" " * LIMIT + b"}",
                                headers={**PLATFORM, "Content-Type": "application/fhir+json"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/fhir+json"
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_bodies_within_the_limit_are_served(small):
    r = await small.client.post("/observation-sets/batch", content=batch(2),
                                headers={**PLATFORM, "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 2
