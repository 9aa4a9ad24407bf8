"""(a) The bare validate-only endpoint (single-set ingest's ceiling), and the generator itself.

``loadgen`` measures the raw asyncio client against httpx on the same bare endpoint, so the
table shows whether the load generator, not the server, is the limit.
"""

from __future__ import annotations

from bench import drive
from bench.core import Context, Row, scenario
from bench.scenarios.common import bare_port, native_bodies
from bench.stats import Summary

PATH = "/observation-sets"


async def bare_saturation(ctx: Context) -> Summary:
    async def measure() -> Summary:
        port = await bare_port(ctx)
        bodies = await native_bodies(ctx, ctx.size(150_000, 20_000))
        return await drive.saturate(ctx, port, PATH, bodies, headers={})
    return await ctx.cached("bare-saturation", measure)


async def bare_constant(ctx: Context) -> Summary:
    async def measure() -> Summary:
        port = await bare_port(ctx)
        bodies = await native_bodies(ctx, drive.needed(ctx, drive.sizes(ctx)["rate"]))
        return await drive.constant(ctx, port, PATH, bodies, headers={})
    return await ctx.cached("bare-constant", measure)


@scenario("bare-api")
async def bare_api(ctx: Context) -> list[Row]:
    sat, con = await bare_saturation(ctx), await bare_constant(ctx)
    rate = drive.sizes(ctx)["rate"]
    return [Row("baseline (a): bare validate endpoint, saturation", sat.achieved_rate, "req/s",
                details=sat.as_dict(), note=f"latency {_lat(sat)} (closed loop, for reference)"),
            Row(f"baseline (a): bare validate endpoint, p99 at {rate:,.0f}/s",
                con.latency_ms["p99"], "ms", details=con.as_dict(),
                note=f"open loop {rate:,.0f}/s: achieved {con.achieved_rate:,.0f}/s, "
                     f"{_lat(con)}, {con.errors} errors")]


@scenario("loadgen")
async def loadgen_ceiling(ctx: Context) -> list[Row]:
    """Raw asyncio client vs httpx, both saturating the bare endpoint."""
    port = await bare_port(ctx)
    bodies = await native_bodies(ctx, ctx.size(60_000, 10_000), seed=11)
    got = {}
    for kind in ("raw", "httpx"):
        original, ctx.client = ctx.client, kind
        try:
            got[kind] = await drive.saturate(ctx, port, PATH, bodies, headers={},
                                             duration=ctx.size(5.0, 1.0))
        finally:
            ctx.client = original
    return [Row("load generator: raw asyncio client vs httpx (bare endpoint)",
                got["raw"].achieved_rate, "req/s", got["httpx"].achieved_rate, "httpx",
                details={k: v.as_dict() for k, v in got.items()},
                note="the generator shares the machine with the server; a ratio near 1 means "
                     "the server is the limit, well above 1 means httpx would have been")]


def _lat(s: Summary) -> str:
    return "p50/p95/p99/p99.9 " + "/".join(f"{v:.1f}" for v in s.latency_ms.values()) + " ms"
