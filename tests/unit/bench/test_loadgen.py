"""The load shapes against a fake server: counts, warm-up, bounds and the error path."""

from __future__ import annotations

import asyncio

from bench.loadgen import closed_loop, open_loop


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
