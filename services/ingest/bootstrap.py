"""Ingest's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.ingest import api, consumers, fhir_api, fhir_outcome
from services.ingest.intake import Clock, IngestRuntime, utc_clock
from shared.api import service_app
from shared.bus.base import Bus
from shared.migrations import script_location_of
from shared.settings import IngestSettings, load_settings

NAME = "ingest"


def bootstrap(settings: IngestSettings | None = None, *, bus: Bus | None = None,
              clock: Clock = utc_clock) -> IngestRuntime:
    """Build ingest's runtime; tests may pass a fixed ``clock`` (taken-at window checks)."""
    settings = settings or load_settings(NAME)  # type: ignore[assignment]
    runtime = IngestRuntime(NAME, settings, migrations=script_location_of(__file__), bus=bus,
                            clock=clock)
    consumers.add_to(runtime, runtime.sites.invalidate)  # a batch consumer
    return runtime


def create_app(runtime: IngestRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """The FHIR routes answer every error, auth and header ones too, as an OperationOutcome."""
    return service_app(runtime, [api.router(runtime), fhir_api.router(runtime)],
                       title="mandet ingest", manage_runtime=manage_runtime,
                       error_renderers={"/fhir": fhir_outcome.render_rejection},
                       direct=[("POST", "/observation-sets")])
