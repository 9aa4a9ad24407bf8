"""Scoring's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.scoring import api, consumers
from shared.api import service_app
from shared.bus.base import Bus
from shared.migrations import script_location_of
from shared.runtime import Runtime
from shared.settings import ScoringSettings, load_settings

NAME = "scoring"


def bootstrap(settings: ScoringSettings | None = None, *, bus: Bus | None = None) -> Runtime:
    settings = settings or load_settings(NAME)  # type: ignore[assignment]
    runtime = Runtime(NAME, settings, migrations=script_location_of(__file__), bus=bus)
    consumers.add_to(runtime)  # a batch consumer: see consumers.BatchConsumerRunner
    return runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    return service_app(runtime, [api.router(runtime)], title="mandet scoring",
                       manage_runtime=manage_runtime)
