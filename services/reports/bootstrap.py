"""Reports' composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from services.reports import api, chart_api, consumers
from services.reports.facts import Horizon
from shared.api import service_app
from shared.bus.base import Bus
from shared.migrations import script_location_of
from shared.runtime import Runtime
from shared.settings import ReportsSettings, load_settings

NAME = "reports"


def bootstrap(settings: ReportsSettings | None = None, *, bus: Bus | None = None,
              clock: Callable[[], datetime] | None = None) -> Runtime:
    """The reports runtime; ``clock`` (aware UTC) decides the current quarter (tests fix it)."""
    settings = settings or load_settings(NAME)  # type: ignore[assignment]
    runtime = Runtime(NAME, settings, migrations=script_location_of(__file__), bus=bus)
    horizon = Horizon.of(settings.first_quarter, clock)
    consumers.add_to(runtime, horizon)  # a batch consumer: see consumers.batch_handler
    return runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    return service_app(runtime, [api.router(runtime), chart_api.router(runtime)],
                       title="mandet reports",
                       manage_runtime=manage_runtime)
