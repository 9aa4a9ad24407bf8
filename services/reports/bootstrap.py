"""Reports' composition root."""

from __future__ import annotations

from fastapi import FastAPI

from shared.api import service_app
from shared.bus.base import Bus
from shared.migrations import script_location_of
from shared.runtime import Runtime
from shared.settings import ReportsSettings, load_settings
from services.reports import api, consumers

NAME = "reports"


def bootstrap(settings: ReportsSettings | None = None, *, bus: Bus | None = None) -> Runtime:
    settings = settings or load_settings(NAME)  # type: ignore[assignment]
    runtime = Runtime(NAME, settings, migrations=script_location_of(__file__), bus=bus)
    runtime.add_consumer("reports.views", consumers.handlers())
    return runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    return service_app(runtime, [api.router(runtime)], title="mandet reports",
                       manage_runtime=manage_runtime)
