"""What several scenarios share: the data set, the homes in play, the bare endpoint."""

from __future__ import annotations

import asyncio

from bench import payloads
from bench.core import Context
from bench.dataset import Dataset, Home, generate, load_icbs
from bench.infra import free_port, wait_http


async def dataset(ctx: Context) -> Dataset:
    return await ctx.cached("dataset", lambda: asyncio.to_thread(
        lambda: generate(load_icbs())))


async def homes(ctx: Context) -> list[Home]:
    """Homes registered with the services: all 15,140, or every 50th in ``--quick``."""
    data = await dataset(ctx)
    return list(data.homes[:: ctx.size(1, 50)])


async def native_bodies(ctx: Context, count: int, seed: int = 7) -> list[bytes]:
    """``count`` distinct native observation sets, encoded (built before any clock starts)."""
    in_play = await homes(ctx)
    sets = await asyncio.to_thread(payloads.observation_sets, in_play, count, seed=seed)
    return [payloads.encode(s) for s in sets]


async def bare_port(ctx: Context) -> int:
    """Port of baseline (a), the validate-only FastAPI app in its own uvicorn process."""
    async def start() -> int:
        infra = ctx.env()
        port = free_port()
        proc = infra.spawn("bare-api", ["-m", "bench.bare_app", "--port", str(port)],
                           dict(__import__("os").environ), port)
        await asyncio.to_thread(wait_http, proc, f"http://127.0.0.1:{port}/healthz")
        return port
    return await ctx.cached("bare-port", start)
