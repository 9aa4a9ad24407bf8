"""Operations endpoints and middleware every service gets: health, readiness, metrics.

``/healthz`` answers while the process lives; ``/readyz`` checks the database and the bus;
``/metrics`` exposes Prometheus text from the service's own registry (four services share one
process in embedded mode, so nothing uses the global default registry).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import logs
from shared.problems import problem_response


class ServiceMetrics:
    """Per-service Prometheus registry with HTTP and pipeline figures."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("http_request_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5))
        self.pipeline = PipelineGauges()
        self.registry.register(self.pipeline)


class PipelineGauges(Collector):
    """Gauges refreshed by the runtime's background loop (reads are async; scrapes are not)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, float, dict[str, str]]] = {}
        self._help: dict[str, str] = {}

    def set(self, name: str, help_text: str, value: float, **labels: str) -> None:
        self.values[name + repr(sorted(labels.items()))] = (name, value, labels)
        self._help[name] = help_text

    def collect(self):  # type: ignore[no-untyped-def]
        families: dict[str, GaugeMetricFamily] = {}
        for name, value, labels in self.values.values():
            fam = families.get(name)
            if fam is None:
                fam = GaugeMetricFamily(name, self._help[name], labels=sorted(labels))
                families[name] = fam
            fam.add_metric([labels[k] for k in sorted(labels)], value)
        return list(families.values())


def ops_router(ready: Callable[[], Awaitable[dict[str, str]]], metrics: ServiceMetrics
               ) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> Any:
        checks = await ready()
        if all(v == "ok" for v in checks.values()):
            return {"status": "ready", "checks": checks}
        return problem_response(request, 503, "Service Unavailable",
                                "a dependency is not reachable", checks=checks)

    @router.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")

    return router


class ObserveMiddleware:
    """Request id, latency and count per route, as plain ASGI (no BaseHTTPMiddleware cost).

    The route template is read after routing, from the scope, so metrics are labelled
    ``/sites/{site_id}`` rather than one series per site.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _header(scope, b"x-request-id") or uuid.uuid4().hex
        token = logs.request_id.set(rid)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(token)
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(scope["method"], path).observe(
                time.perf_counter() - start)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")[:128]
    return None


class BodyLimitMiddleware:
    """Refuse a request body over ``max_bytes`` with 413 before it is held in memory.

    The check runs where the body is read (the route's first ``receive``), so the error is
    rendered by the app's own handlers (problem+json, or an OperationOutcome on FHIR routes):
    a declared Content-Length over the limit at once, a chunked body as soon as it passes it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, limit, seen = _header(scope, b"content-length"), self.max_bytes, 0

        async def limited() -> Message:
            nonlocal seen
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> HTTPException:
    # An HTTPException, which FastAPI lets through from a body read (anything else raised
    # there becomes its generic 400); the app's handlers render it per route.
    return HTTPException(413, f"the request body is larger than {limit} bytes "
                              "(MANDET_MAX_BODY_BYTES)")


def install_middleware(app: FastAPI, metrics: ServiceMetrics, max_body_bytes: int) -> None:
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(ObserveMiddleware, metrics=metrics)
