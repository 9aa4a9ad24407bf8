"""Baseline (a): bare FastAPI endpoints that only validate the same JSON as ingest's.

Same edge models as ingest's ``POST /observation-sets`` (``ObservationSetIn``), its batch
(every item an ``ObservationSetIn``) and ``POST /fhir`` (the Bundle, then each Observation
entry, with ingest's own FHIR models and ``parse_float=Decimal``), same server stack
(``uvicorn.run(app, log_config=None)`` as ``mandet serve``, the same FastAPI options), no
auth, no database: the ceilings the real endpoints are compared with (issue 4).
Run: ``python -m bench.bare_app --port P``.
"""

from __future__ import annotations

import argparse
import json
import uuid
from decimal import Decimal

from fastapi import FastAPI, Request
from pydantic import TypeAdapter

from services.ingest.fhir_models import Bundle, Observation
from services.ingest.schemas import BatchIn, ObservationSetIn
from shared.api import FRAMEWORK_OPTIONS

_ITEMS = TypeAdapter(list[ObservationSetIn])

# The services' framework options (telemetry off), so the ratio compares like with like.
app = FastAPI(title="bench bare endpoint", **FRAMEWORK_OPTIONS)


@app.post("/observation-sets", status_code=201)
async def validate_only(body: ObservationSetIn) -> dict[str, str]:
    """Validate and answer like ingest would; store nothing."""
    return {"id": str(uuid.uuid4()), "outcome": "accepted"}


@app.post("/observation-sets/batch")
async def validate_batch(body: BatchIn) -> dict[str, object]:
    """Validate every item as ingest's batch does; answer with per-item results."""
    items = _ITEMS.validate_python(body.items)
    return {"accepted": len(items), "duplicates": 0, "rejected": 0,
            "results": [{"index": i, "outcome": "accepted", "id": str(uuid.uuid4()),
                         "status": 201} for i in range(len(items))]}


@app.post("/fhir")
async def validate_bundle(request: Request) -> dict[str, object]:
    """Validate the Bundle and each Observation with ingest's FHIR models; store nothing."""
    bundle = Bundle.model_validate(json.loads(await request.body(), parse_float=Decimal))
    observations = [Observation.model_validate(e.resource) for e in bundle.entry
                    if e.resource.get("resourceType") == "Observation"]
    return {"resourceType": "Bundle", "type": f"{bundle.type}-response",
            "entry": [{"response": {"status": "201 Created"}} for _ in observations]}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_config=None)
