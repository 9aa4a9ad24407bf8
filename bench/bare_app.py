"""Baseline (a): a bare FastAPI endpoint that only validates the observation JSON.

Same edge model as ingest's ``POST /observation-sets`` (``ObservationSetIn``), same server
stack (``uvicorn.run(app, log_config=None)`` as ``mandet serve``, the same FastAPI options),
no auth, no database: the ceiling the real endpoint is compared with. If ingest's schema is
missing, a model with the fields of ``ObservationRecorded`` stands in.
Run: ``python -m bench.bare_app --port P``.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from shared.api import FRAMEWORK_OPTIONS

try:
    from services.ingest.schemas import ObservationSetIn
except ImportError:  # ingest not built yet: the event's fields, validated the same way
    class ObservationSetIn(BaseModel):  # type: ignore[no-redef]
        model_config = ConfigDict(extra="forbid")
        nhs_number: str | None = None
        local_id: str | None = None
        site_id: str = Field(min_length=3, max_length=32)
        taken_at: datetime
        respiration_rate: Decimal | None = Field(default=None, allow_inf_nan=False)
        spo2: Decimal | None = Field(default=None, allow_inf_nan=False)
        on_oxygen: bool | None = None
        systolic_bp: Decimal | None = Field(default=None, allow_inf_nan=False)
        pulse: Decimal | None = Field(default=None, allow_inf_nan=False)
        consciousness: Literal["A", "C", "V", "P", "U"] | None = None
        temperature: Decimal | None = Field(default=None, allow_inf_nan=False)
        temperature_unit: Literal["C", "F"] = "C"
        platform_set_id: str | None = None

# The services' framework options (telemetry off), so the ratio compares like with like.
app = FastAPI(title="bench bare endpoint", **FRAMEWORK_OPTIONS)


@app.post("/observation-sets", status_code=201)
async def validate_only(body: ObservationSetIn) -> dict[str, str]:
    """Validate and answer like ingest would; store nothing."""
    return {"id": str(uuid.uuid4()), "outcome": "accepted"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_config=None)
