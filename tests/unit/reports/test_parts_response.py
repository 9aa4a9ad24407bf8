"""``PartsResponse`` sends a body as its parts: the client must get exactly their
concatenation, with its length, whatever parts are empty."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from services.reports.render import PartsResponse

CASES = [
    ([b'{"rows":[', b'{"a":1}', b",", b'{"b":2}', b"]}"], b'{"rows":[{"a":1},{"b":2}]}'),
    ([b'{"rows":[', b"", b"]}"], b'{"rows":[]}'),
    ([], b""),
]


@pytest.mark.parametrize(("parts", "body"), CASES)
async def test_the_client_gets_the_parts_joined_with_their_length(parts, body):
    async def route(request):  # noqa: ANN001, ANN202
        return PartsResponse(parts, "application/json", {"x-last-event-time": "t"})

    app = Starlette(routes=[Route("/", route)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        r = await client.get("/")
    assert r.content == body
    assert r.headers["content-length"] == str(len(body))
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-last-event-time"] == "t"
