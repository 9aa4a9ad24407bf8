"""The shared error handlers: problem+json by default, a service's renderer below its prefix."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse

from shared import problems
from shared.problems import Problem, Rejection


def plain(request: Request, rejection: Rejection) -> JSONResponse:
    return JSONResponse({"plain": rejection.status, "why": rejection.detail},
                        status_code=rejection.status, media_type="application/x-plain+json",
                        headers=rejection.headers)


def broken(request: Request, rejection: Rejection) -> JSONResponse:
    raise ValueError("renderer bug")


def app_with(renderers) -> FastAPI:
    app = FastAPI()
    problems.install(app, renderers)
    router = APIRouter()

    async def refuse(x_key: Annotated[int | None, Header()] = None) -> None:
        raise Problem(401, "Unauthorized", "no token", headers={"WWW-Authenticate": "Bearer"})

    for path in ("/alt", "/alt/{thing}", "/alternative", "/other"):
        router.add_api_route(path, refuse, methods=["POST"])
    app.include_router(router)
    return app


async def call(app: FastAPI, method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_renderer_applies_to_its_prefix_and_below_only():
    app = app_with({"/alt": plain})
    for path in ("/alt", "/alt/x"):
        r = await call(app, "POST", path)
        assert (r.status_code, r.headers["content-type"]) == (401, "application/x-plain+json")
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json() == {"plain": 401, "why": "no token"}
    for path in ("/alternative", "/other"):
        r = await call(app, "POST", path)
        assert (r.status_code, r.headers["content-type"]) == (401, "application/problem+json")
        assert r.json() == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                            "instance": path, "detail": "no token"}


async def test_validation_and_routing_errors_use_the_renderer_too():
    app = app_with({"/alt": plain})
    r = await call(app, "POST", "/alt", headers={"x-key": "nope"})
    assert (r.status_code, r.json()) == (422, {"plain": 422,
                                               "why": "One or more fields failed validation."})
    r = await call(app, "GET", "/alt")  # matched the route template, wrong method
    assert (r.status_code, r.json()) == (405, {"plain": 405, "why": "Method Not Allowed"})
    r = await call(app, "GET", "/alt/x/y")  # no route: the path decides
    assert (r.status_code, r.json()) == (404, {"plain": 404, "why": "Not Found"})


async def test_mounted_app_matches_the_path_relative_to_its_mount():
    root = FastAPI()
    problems.install(root)
    root.mount("/svc", app_with({"/alt": plain}))
    r = await call(root, "POST", "/svc/alt/x")
    assert (r.status_code, r.headers["content-type"]) == (401, "application/x-plain+json")
    r = await call(root, "GET", "/svc/alt/x/y")
    assert (r.status_code, r.headers["content-type"]) == (404, "application/x-plain+json")
    r = await call(root, "POST", "/svc/other")
    assert (r.status_code, r.headers["content-type"]) == (401, "application/problem+json")
    assert r.json()["instance"] == "/svc/other"


async def test_a_failing_renderer_falls_back_to_problem_json():
    r = await call(app_with({"/alt": broken}), "POST", "/alt")
    assert (r.status_code, r.headers["content-type"]) == (401, "application/problem+json")
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["detail"] == "no token"


async def test_without_renderers_everything_is_problem_json():
    r = await call(app_with(None), "POST", "/alt")
    assert (r.status_code, r.headers["content-type"]) == (401, "application/problem+json")
