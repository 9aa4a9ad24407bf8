"""Ingest's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from shared.api import service_app
from shared.bus.base import Bus
from shared.migrations import script_location_of
from shared.runtime import Runtime
from shared.settings import IngestSettings, load_settings
from services.ingest import api, consumers

NAME = "ingest"


def bootstrap(settings: IngestSettings | None = None, *, bus: Bus | None = None) -> Runtime:
    settings = settings or load_settings(NAME)  # type: ignore[assignment]
    runtime = Runtime(NAME, settings, migrations=script_location_of(__file__), bus=bus)
    runtime.add_consumer("ingest.sites", consumers.handlers())
    return runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    return service_app(runtime, [api.router(runtime)], title="mandet ingest",
                       manage_runtime=manage_runtime)
