"""(d) The pure NEWS2 function in-process (bench/news2_pure.py's inputs), best of three."""

from __future__ import annotations

import asyncio
import time

from bench.core import Context, Row, Target, scenario
from bench.news2_pure import make_vitals
from services.scoring.domain.news2 import score


def pure_rate(n: int) -> float:
    batch = make_vitals(n)
    best = float("inf")
    for _ in range(3):  # best of three: the least disturbed run
        start = time.perf_counter()
        for v in batch:
            score(v)
        best = min(best, time.perf_counter() - start)
    return n / best


async def news2_pure_rate(ctx: Context) -> float:
    n = ctx.size(200_000, 20_000)
    return await ctx.cached("news2-pure", lambda: asyncio.to_thread(pure_rate, n))


@scenario("news2-pure")
async def news2_pure(ctx: Context) -> list[Row]:
    rate = await news2_pure_rate(ctx)
    return [Row("NEWS2 pure function (one core)", rate, "scores/s",
                target=Target(">=", 200_000, "scores/s"))]
