"""RFC 9457 problem details for every 4xx and 5xx; never a stack trace to the client.

Validation failures list every error with the field (a JSON pointer-ish dotted path), the
rejected value where safe, and the reason, under the ``errors`` extension member.

A service may answer some of its routes in another format (ingest's FHIR routes answer
OperationOutcome): :func:`install` takes ``renderers``, a mapping of route path prefix (as the
service's own app sees it, e.g. ``/fhir``) to a :data:`Renderer`. Every handler below first
states what went wrong as a :class:`Rejection`, then lets the renderer for the request's route
write it; routes no prefix covers get problem+json. A renderer that fails itself is logged and
replaced by problem+json, so a rejection is never turned into a crash.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

log = logging.getLogger("mandet.http")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from handlers or routes to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None,
                 *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors, self.headers, self.extra = errors, headers, extra


@dataclass(frozen=True)
class Rejection:
    """What went wrong, before it is written in any format.

    ``errors`` items are ``{"field", "reason"}`` (and ``"value"`` where safe to echo); a field
    from request parsing is prefixed by where it was read: ``header.Idempotency-Key``.
    """

    status: int
    title: str
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None
    headers: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Renderer = Callable[[Request, Rejection], Response]


def problem_response(request: Request, status: int, title: str, detail: str | None = None,
                     *, errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "instance": request.url.path}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def render_problem(request: Request, rejection: Rejection) -> Response:
    """The default renderer: RFC 9457 problem+json."""
    return problem_response(request, rejection.status, rejection.title, rejection.detail,
                            errors=rejection.errors, headers=rejection.headers,
                            **rejection.extra)


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":   # loc is ("body", character offset)
            where = [p for p in err.get("loc", ()) if isinstance(p, int)]
            error = (err.get("ctx") or {}).get("error")
            out.append({"field": "body", "reason": "the body is not valid JSON"
                        + (f" (at character {where[0]})" if where else "")
                        + (f": {error}" if error else "")})
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        item: dict[str, Any] = {"field": ".".join(loc) or "body", "reason": err.get("msg")}
        if "input" in err and _safe(err["input"]):
            item["value"] = err["input"]
        out.append(item)
    return out


def _safe(value: Any) -> bool:
    """Echo short scalars only; NaN and infinity cannot be written as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200


def route_path(scope: Scope) -> str:
    """The request's path as the app serving it sees it: the matched route's template if
    routing got that far, else the URL path without the mount prefix (``root_path``)."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("", "/"):
        path = path[len(root):]
    return path or "/"


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def install(app: FastAPI, renderers: Mapping[str, Renderer] | None = None) -> None:
    """Register the error handlers on an app: problem+json, or ``renderers[prefix]`` for
    routes whose path (relative to this app) is ``prefix`` or below it."""
    chosen = dict(renderers or {})

    def answer(request: Request, rejection: Rejection) -> Response:
        path = route_path(request.scope)
        for prefix, renderer in chosen.items():
            if _under(path, prefix):
                try:
                    return renderer(request, rejection)
                except Exception:  # never let a renderer turn a 4xx into a crash
                    log.exception("error renderer failed", extra={"path": request.url.path})
                    break
        return render_problem(request, rejection)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return answer(request, Rejection(exc.status, exc.title, exc.detail, exc.errors,
                                         exc.headers, exc.extra))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, Rejection(422, "Request is not valid",
                                         "One or more fields failed validation.",
                                         field_errors(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else None
        return answer(request, Rejection(exc.status_code, _title(exc.status_code), detail,
                                         headers=getattr(exc, "headers", None)))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return answer(request, Rejection(
            500, "Internal Server Error",
            "The server failed to handle this request; it has been logged."))


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
