"""Service processes on the scale path, shared by every scenario of one run.

``service(ctx, name, routes)`` starts ``mandet serve <name>`` (it migrates first) and, when
asked, ``mandet worker <name>`` (relay and consumers), with the service's own database, once
per run, and raises ``Unavailable`` if the service or any wanted route does not exist. The
register's site events for the homes in play are published once, straight to the sites topic,
exactly as adoption's relay would publish them, so no scenario depends on adoption.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from dataclasses import dataclass

import httpx
from aiokafka import AIOKafkaProducer

from bench.core import Context, Unavailable
from bench.infra import Proc
from bench.pgutil import connect, fetchval
from bench.scenarios.common import homes
from shared.bus.kafka import KafkaBus
from shared.events import encode, topics, wrap
from shared.events.sites import SiteRegistered


@dataclass
class Service:
    name: str
    database_url: str
    api: Proc
    worker: Proc | None
    paths: frozenset[str]

    @property
    def port(self) -> int:
        return self.api.port  # type: ignore[return-value]


def prefix_of(ctx: Context, pipeline: str) -> str:
    """Topic prefix of a pipeline: "main", or a separate one whose topics start empty."""
    base = ctx.env().topic_prefix
    return base if pipeline == "main" else f"{base}{pipeline}."


async def service(ctx: Context, name: str, routes: list[str], *, worker: bool = True,
                  pipeline: str = "main") -> Service:
    """The service's API (and, unless ``worker=False``, its worker), started once per run.

    A scenario that only calls an API leaves the worker off, so no consumer backlog from
    earlier scenarios competes with it for the two cores.
    """
    if importlib.util.find_spec(f"services.{name}.bootstrap") is None:
        raise Unavailable(f"services/{name} has no bootstrap module")
    svc = await ctx.cached(f"service:{pipeline}:{name}", lambda: _start(ctx, name, pipeline))
    missing = [r for r in routes if r not in svc.paths]
    if missing:
        raise Unavailable(f"{name} has no route {', '.join(missing)}")
    if worker and svc.worker is None:
        svc.worker = await asyncio.to_thread(ctx.env().worker, name, svc.database_url,
                                             _label(name, pipeline, "worker"),
                                             prefix_of(ctx, pipeline))
    return svc


async def retire(ctx: Context, pipeline: str) -> None:
    """Stop a pipeline's services (API and worker) after the last scenario that uses them:
    idle consumers cost the broker CPU in every later scenario (``Infra.retire``)."""
    for svc in ctx.forget(f"service:{pipeline}:"):
        if isinstance(svc, Service):
            for proc in (svc.worker, svc.api):
                if proc is not None:
                    await asyncio.to_thread(ctx.env().retire, proc)


async def _start(ctx: Context, name: str, pipeline: str) -> Service:
    infra = ctx.env()
    url = infra.database()
    api = await asyncio.to_thread(infra.serve, name, url, _label(name, pipeline, "api"),
                                  prefix_of(ctx, pipeline))  # it migrates before it listens
    return Service(name, url, api, None, await paths_of(api))


def _label(name: str, pipeline: str, role: str) -> str:
    return f"{name}-{role}" if pipeline == "main" else f"{name}-{pipeline}-{role}"


async def paths_of(api: Proc) -> frozenset[str]:
    """The routes an API process serves (from its OpenAPI document)."""
    async with httpx.AsyncClient() as client:
        spec = (await client.get(f"http://127.0.0.1:{api.port}/openapi.json")).json()
    return frozenset(spec.get("paths", {}))


async def publish_sites(ctx: Context, pipeline: str = "main") -> int:
    """SiteRegistered for every home in play, on the pipeline's sites topic (once)."""
    async def publish() -> int:
        infra, in_play = ctx.env(), await homes(ctx)
        topic = prefix_of(ctx, pipeline) + topics.SITES
        await KafkaBus(infra.bootstrap, enable_idempotence=False).ensure_topics([topic])
        producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all",
                                    enable_idempotence=False, linger_ms=5)
        await producer.start()
        try:
            futures = []
            for h in in_play:
                env = wrap(SiteRegistered(site_id=h.site_id, revision=1, name=f"Home {h.site_id}",
                                          setting_type="care_home", icb_code=h.icb_code,
                                          psc_code=h.psc_code, region=h.region,
                                          beds=h.residents + 5), source="adoption")
                futures.append(await producer.send(topic, encode(env), key=h.site_id.encode()))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return len(in_play)
    return await ctx.cached(f"sites-published:{pipeline}", publish)


async def wait_rows(database_url: str, sql: str, want: int, timeout: float = 180.0) -> int:
    """Poll ``sql`` (a count) until it reaches ``want``; the last count."""
    conn = await connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            got = int(await conn.fetchval(sql))
            if got >= want or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def count(database_url: str, sql: str) -> int:
    return int(await fetchval(database_url, sql))
