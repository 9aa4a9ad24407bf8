"""The FastAPI app every service gets: problem+json, ops routes, metrics, lifespan."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

from shared import problems
from shared.auth import Principal, Role, require
from shared.ops import install_middleware, ops_router
from shared.runtime import Runtime

ANY_ROLE = tuple(Role)
# FastAPI's native OpenTelemetry (newer releases) looks up the global providers on every
# request (~4 % of an ingest request's CPU here) and nothing here exports it: /metrics and
# the JSON logs with request ids are the services' observability. Off where it exists.
FRAMEWORK_OPTIONS: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


def service_app(runtime: Runtime, routers: Sequence[APIRouter], *, title: str,
                manage_runtime: bool = True,
                error_renderers: Mapping[str, problems.Renderer] | None = None) -> FastAPI:
    """A service's app. With ``manage_runtime`` its lifespan starts and stops the runtime.

    Errors are problem+json, except on routes under a prefix of ``error_renderers`` (path as
    this app sees it, e.g. ``/fhir``), which that renderer writes (see ``shared.problems``).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    app = FastAPI(title=title, lifespan=lifespan, version="0.1.0", **FRAMEWORK_OPTIONS)
    app.state.tokens = runtime.tokens
    app.state.runtime = runtime
    problems.install(app, error_renderers)
    install_middleware(app, runtime.metrics, runtime.settings.max_body_bytes)
    app.include_router(ops_router(runtime.ready, runtime.metrics))
    app.include_router(whoami_router())
    for router in routers:
        app.include_router(router)
    return app


def ops_app(runtime: Runtime) -> FastAPI:
    """Health, readiness and metrics alone: what a worker process (no API) serves."""
    app = FastAPI(title=f"mandet {runtime.service} worker", docs_url=None, redoc_url=None,
                  **FRAMEWORK_OPTIONS)
    problems.install(app)
    install_middleware(app, runtime.metrics, runtime.settings.max_body_bytes)
    app.include_router(ops_router(runtime.ready, runtime.metrics))
    return app


def whoami_router() -> APIRouter:
    router = APIRouter(tags=["auth"])

    @router.get("/whoami")
    async def whoami(principal: Annotated[Principal, Depends(require(*ANY_ROLE))]) -> dict:
        """Who the bearer token says you are, and what it lets you see."""
        return {"sub": principal.sub, "role": principal.role, "sites": sorted(principal.sites),
                "icbs": sorted(principal.icbs), "pscs": sorted(principal.pscs)}

    return router
