"""The FastAPI app every service gets: problem+json, ops routes, metrics, lifespan."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

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
                error_renderers: Mapping[str, problems.Renderer] | None = None,
                direct: Sequence[tuple[str, str]] = ()) -> FastAPI:
    """A service's app. With ``manage_runtime`` its lifespan starts and stops the runtime.

    Errors are problem+json, except on routes under a prefix of ``error_renderers`` (path as
    this app sees it, e.g. ``/fhir``), which that renderer writes (see ``shared.problems``).
    ``direct``: (method, path) of hot routes served without routing (``DirectRoutes``).
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
    if direct:   # innermost: inside the request-id, metrics and body-limit middleware
        app.add_middleware(DirectRoutes, app_=app, routes=direct_routes(routers, direct))
    install_middleware(app, runtime.metrics, runtime.settings.max_body_bytes)
    app.include_router(ops_router(runtime.ready, runtime.metrics))
    app.include_router(whoami_router())
    for router in routers:
        app.include_router(router)
    return app


class DirectRoutes:
    """Serve a few hot routes straight from the middleware stack, without routing them.

    Matching a path against every route, FastAPI's per-request machinery and the two
    exception-handling layers cost about a third of a single-set POST's CPU, more than the
    route's own work. A route listed here is found by (method, path) in a dict and its
    endpoint called directly, still inside the request-id, metrics and body-limit
    middleware; an exception it raises goes to the app's own handlers, as routing would send
    it, and anything they do not handle goes on to the server-error handler. So a direct
    route answers exactly as the routed one: the tests of the route run this path. The
    route stays declared for OpenAPI. Only a route that reads its own request qualifies: one
    parameter, the ``Request``, no dependencies, and it returns a ``Response``.
    """

    def __init__(self, app: ASGIApp, *, app_: FastAPI,
                 routes: dict[tuple[str, str], APIRoute]) -> None:
        self.app, self.fastapi, self.routes = app, app_, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get((scope["method"], problems.route_path(scope)))
            if route is not None:
                scope["route"] = route   # for metrics labels and error renderers
                request = Request(scope, receive, send)
                try:
                    response = await route.endpoint(request)
                except Exception as exc:
                    handler = self._handler_for(exc)
                    if handler is None:
                        raise
                    response = handler(request, exc)
                    if inspect.isawaitable(response):
                        response = await response
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Any:
        """The app's handler for ``exc``, looked up as Starlette's exception middleware does
        (an HTTP status first, then the class hierarchy); the 500 handler is not one."""
        handlers = self.fastapi.exception_handlers
        if isinstance(exc, StarletteHTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers and cls is not Exception:
                return handlers[cls]
        return None


def direct_routes(routers: Sequence[APIRouter], wanted: Sequence[tuple[str, str]]
                  ) -> dict[tuple[str, str], APIRoute]:
    """The routes ``DirectRoutes`` may serve, by (method, path), checked to qualify (routers
    are included without a prefix)."""
    wanted_set = set(wanted)
    found = {(m, r.path): r for router in routers for r in router.routes
             if isinstance(r, APIRoute) for m in r.methods if (m, r.path) in wanted_set}
    if missing := wanted_set - set(found):
        raise RuntimeError(f"direct routes not declared: {sorted(missing)}")
    for route in found.values():
        params = list(inspect.signature(route.endpoint).parameters.values())
        if route.dependant.dependencies or len(params) != 1 \
                or params[0].annotation not in (Request, "Request"):
            raise RuntimeError(f"{route.path} cannot be direct: it must take only the "
                               "Request and declare no dependencies")
    return found


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
