"""Load shapes the scenarios share, over one HTTP port, with the run's sizes."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from bench import loadgen
from bench.core import Context
from bench.http import make_client
from bench.stats import Summary


def sizes(ctx: Context) -> dict[str, float]:
    """Warm-up, measurement and rate of the run (``--quick`` shrinks all of them)."""
    out = ctx.size({"warmup": 2.0, "duration": 10.0, "rate": 1000.0, "workers": 32},
                   {"warmup": 0.5, "duration": 2.0, "rate": 200.0, "workers": 8})
    return out | ({"rate": ctx.rate} if ctx.rate else {})


async def saturate(ctx: Context, port: int, path: str, bodies: Sequence[bytes], *,
                   headers: Mapping[str, str], ok: Collection[int] = (200, 201),
                   workers: int | None = None, duration: float | None = None,
                   method: str = "POST") -> Summary:
    """Closed loop: as many requests as ``workers`` concurrent senders get answered."""
    s = sizes(ctx)
    n = int(workers or s["workers"])
    client = make_client(ctx.client, "127.0.0.1", port, connections=n)
    reqs = [client.encode(method, path, b, _json(headers)) for b in bodies]
    try:
        return await loadgen.closed_loop(client.send, reqs, workers=n, warmup_s=s["warmup"],
                                         duration_s=duration or s["duration"],
                                         max_count=len(reqs), ok=ok)
    finally:
        await client.aclose()


async def constant(ctx: Context, port: int, path: str, bodies: Sequence[bytes], *,
                   headers: Mapping[str, str], rate: float | None = None,
                   ok: Collection[int] = (200, 201), method: str = "POST") -> Summary:
    """Open loop at ``rate`` requests/s (default: the run's rate), warm-up excluded."""
    s = sizes(ctx)
    client = make_client(ctx.client, "127.0.0.1", port, connections=256)
    reqs = [client.encode(method, path, b, _json(headers)) for b in bodies]
    try:
        return await loadgen.open_loop(client.send, reqs, rate=rate or s["rate"],
                                       warmup_s=s["warmup"], duration_s=s["duration"],
                                       max_count=len(reqs), ok=ok)
    finally:
        await client.aclose()


def _json(headers: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **headers}


def needed(ctx: Context, rate: float) -> int:
    """Bodies for warm-up plus measurement at ``rate``/s (each body is sent once)."""
    s = sizes(ctx)
    return int(rate * (s["warmup"] + s["duration"])) + 1
