"""The load shapes against a fake server: counts, warm-up, bounds and the error path."""

from __future__ import annotations

import asyncio
import gc

import pytest

from bench.loadgen import closed_loop, open_loop, steady


async def test_open_loop_sends_every_scheduled_request_once():
    seen: list[int] = []

    async def send(payload: int) -> int:
        seen.append(payload)
        return 201

    s = await open_loop(send, list(range(100)), rate=500, warmup_s=0.02, duration_s=0.08,
                        max_count=1000)
    assert sorted(seen) == list(range(50))  # 500/s for 0.1 s
    assert (s.sent, s.ok, s.errors, s.all_ok) == (40, 40, 0, 50)  # 10 were warm-up


async def test_open_loop_counts_unanswered_requests_as_errors():
    async def send(payload: int) -> int:
        if payload % 2:
            await asyncio.sleep(10)  # never answers within the drain time
        return 200

    s = await open_loop(send, list(range(10)), rate=1000, warmup_s=0, duration_s=0.01,
                        max_count=10, drain_s=0.05)
    assert (s.sent, s.ok, s.errors) == (10, 5, 5)


async def test_closed_loop_is_bounded_by_count_and_counts_failures():
    async def send(payload: int) -> int:
        if payload == 3:
            raise ConnectionError("refused")
        return 500 if payload == 4 else 200

    s = await closed_loop(send, list(range(7)), workers=3, warmup_s=0, duration_s=5,
                          max_count=7)
    assert (s.sent, s.ok, s.errors) == (7, 5, 2)


async def test_raw_client_resends_once_when_a_pooled_connection_was_closed_idle():
    """The server answers, then drops the idle keep-alive connection (as uvicorn does after
    5 s); the next request on it is sent again on a new connection, like httpx would."""
    from bench.http import RawClient

    connections = 0

    async def serve(reader, writer):
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()   # keep-alive expired: closed without saying so

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = RawClient("127.0.0.1", port)
    raw = client.encode("GET", "/", b"", {})
    try:
        assert await client.send(raw) == 200
        await asyncio.sleep(0.05)
        assert await client.send(raw) == 200   # the pooled connection was dead
        assert connections == 2
    finally:
        await client.aclose()
        server.close()


async def test_raw_client_does_not_resend_on_a_fresh_connection():
    from bench.http import RawClient

    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()   # no answer at all

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    client = RawClient("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await client.send(client.encode("GET", "/", b"", {}))
    finally:
        await client.aclose()
        server.close()


@pytest.fixture
def thawed() -> None:
    if gc.get_freeze_count():
        pytest.skip("an app started by an earlier test left the heap frozen")


@pytest.mark.usefixtures("thawed")
def test_a_load_phase_runs_with_the_harness_heap_frozen_and_thawed_after() -> None:
    with steady():
        frozen = gc.get_freeze_count()
        with steady():   # nested: frozen once, not again (only freezing adds to the count;
            assert gc.get_freeze_count() <= frozen   # another thread may free some)
        assert gc.get_freeze_count() > 0   # and not thawed by the inner exit
    assert frozen > 0
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("thawed")
async def test_open_loop_sends_with_the_heap_frozen() -> None:
    counts: list[int] = []

    async def send(_: object) -> int:
        counts.append(gc.get_freeze_count())
        return 200

    await open_loop(send, [1], rate=200, warmup_s=0, duration_s=0.05, max_count=5)
    assert counts and all(c > 0 for c in counts)
    assert gc.get_freeze_count() == 0
