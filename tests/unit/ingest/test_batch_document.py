"""The batch answer, built directly, is exactly what the ``BatchOut`` model would give."""

from __future__ import annotations

import uuid

from services.ingest.api import _batch
from services.ingest.observations import Outcome
from services.ingest.schemas import BatchOut, SetResult


def test_batch_document_matches_the_response_model() -> None:
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    outcomes = [Outcome("accepted", a, 201), Outcome("duplicate", b, 200),
                Outcome("rejected", None, 422, [{"field": "spo2", "value": 101,
                                                 "reason": "must be between 40 and 100"}])]
    status, body = _batch(outcomes)
    model = BatchOut(accepted=1, duplicates=1, rejected=1, results=[
        SetResult(index=i, outcome=o.kind, id=o.id, status=o.status, errors=o.errors)
        for i, o in enumerate(outcomes)])
    assert status == 200
    assert body == model.model_dump(mode="json", exclude_none=True)
    assert list(body["results"][0]) == ["index", "outcome", "id", "status"]
