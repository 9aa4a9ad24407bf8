"""Adoption's composition root: the one place its parts are built."""

from __future__ import annotations

from fastapi import FastAPI

from services.adoption import api, reference
from shared.api import service_app
from shared.bus.base import Bus
from shared.migrations import script_location_of
from shared.runtime import Runtime
from shared.settings import AdoptionSettings, load_settings

NAME = "adoption"


def bootstrap(settings: AdoptionSettings | None = None, *, bus: Bus | None = None) -> Runtime:
    settings = settings or load_settings(NAME)  # type: ignore[assignment]
    runtime = Runtime(NAME, settings, migrations=script_location_of(__file__), bus=bus)

    async def load_reference() -> None:
        async with runtime.db.transaction() as session:
            await reference.load_icbs(session)
        if _wants_care_homes(settings):
            async with runtime.db.transaction() as session:
                await reference.load_care_homes_if_empty(session)

    if settings.load_reference_data:
        runtime.startup_steps.append(load_reference)
    return runtime


def _wants_care_homes(settings: AdoptionSettings) -> bool:
    if settings.load_care_homes is None:
        return settings.database_url is None
    return settings.load_care_homes


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    return service_app(runtime, api.routers(runtime), title="mandet adoption",
                       manage_runtime=manage_runtime)
