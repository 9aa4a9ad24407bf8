"""The embedded default: all four services in one process, one port, one in-process bus.

This module and ``mandet.cli`` are the composition roots of the whole platform, the only
code that imports more than one service. Services are mounted under their own prefix
(``/adoption``, ``/ingest``, ``/scoring``, ``/reports``) and keep their own SQLite file.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import FastAPI

from shared import problems
from shared.api import FRAMEWORK_OPTIONS
from shared.bus.memory import MemoryBus
from shared.runtime import Runtime
from shared.settings import load_settings

SERVICES = ("adoption", "ingest", "scoring", "reports")  # start order: the register first


def service_module(name: str) -> ModuleType:
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{name}.bootstrap")


def create_embedded_app(**overrides: Any) -> FastAPI:
    """One app mounting every service; its lifespan starts and stops their runtimes."""
    first = load_settings(SERVICES[0], **overrides)
    bus = MemoryBus(partitions=first.kafka_partitions)
    runtimes: dict[str, Runtime] = {}
    apps: dict[str, FastAPI] = {}
    for name in SERVICES:
        module = service_module(name)
        runtimes[name] = module.bootstrap(load_settings(name, **overrides), bus=bus)
        apps[name] = module.create_app(runtimes[name], manage_runtime=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started: list[Runtime] = []
        try:
            for name in SERVICES:
                await runtimes[name].start()
                started.append(runtimes[name])
            yield
        finally:
            for runtime in reversed(started):
                await runtime.stop()

    root = FastAPI(title="mandet (embedded)", lifespan=lifespan, docs_url=None, redoc_url=None,
                   **FRAMEWORK_OPTIONS)
    root.state.runtimes = runtimes
    problems.install(root)

    @root.get("/", include_in_schema=False)
    async def index() -> dict[str, Any]:
        return {name: {"api": f"/{name}", "docs": f"/{name}/docs",
                       "openapi": f"/{name}/openapi.json"} for name in SERVICES}

    for name in SERVICES:
        root.mount(f"/{name}", apps[name])
    return root
