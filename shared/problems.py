"""RFC 9457 problem details for every 4xx and 5xx; never a stack trace to the client.

Validation failures list every error with the field (a JSON pointer-ish dotted path), the
rejected value where safe, and the reason, under the ``errors`` extension member.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
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


def install(app: FastAPI) -> None:
    """Register problem+json handlers on an app."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, errors=exc.errors,
                                headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(request, 422, "Request is not valid",
                                "One or more fields failed validation.",
                                errors=field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(request, exc.status_code, _title(exc.status_code), detail,
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(request, 500, "Internal Server Error",
                                "The server failed to handle this request; it has been logged.")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
