"""Reports: the rebuild command's own path, from the broker (``replay_from_bus``), issue 6.

The ``rebuild`` scenario times the replay and derivation engine from decoded events. A
rebuild from Kafka also fetches every message from the broker, decodes it, validates it
(a malformed one is counted and skipped) and only then replays it, and it must notice that
it has caught up. Here the national history (the same events) is published to topics of its
own, and ``replay_from_bus`` rebuilds a fresh reports database from them, as
``mandet rebuild reports --from bus`` does; the baseline is the engine alone (``rebuild``'s
figure, same run).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.core import Context, Row, Target, scenario
from bench.scenarios.reports import history_envelopes, own_cpu, populate, postgres_cpu
from bench.scenarios.services import prefix_of
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.bus.memory import MemoryBus
from shared.db import Database
from shared.events import EVENT_TYPES, encode, topics
from shared.migrations import upgrade
from shared.settings import load_settings

CHUNK = 5000


@scenario("rebuild-bus")
async def rebuild_bus(ctx: Context) -> list[Row]:
    engine = await populate(ctx)
    row = Row("rebuild command from the broker (fetch, decode, validate, replay, derive)", None,
              "events/s", engine["rate"], "the engine alone, decoded events (rebuild row)",
              Target(">=", 50_000, "events/s"))
    built = await _rebuilt(ctx)
    row.figure, row.details = built["rate"], built
    row.note = (f"{built['applied']:,} events replayed from {built['published']:,} messages "
                f"({built['skipped']} unreadable) in {built['seconds']:.1f} s, caught-up "
                "detection included (forked workers, one per core); published to the broker "
                "beforehand, not timed; CPU per 1,000 events: harness and workers "
                f"{built['client_cpu_ms_per_1000']:.1f} ms, PostgreSQL "
                f"{built['postgres_cpu_ms_per_1000']:.1f} ms")
    return [row]


async def _rebuilt(ctx: Context) -> dict[str, Any]:
    from services.reports import rebuild as rb
    from services.reports.bootstrap import bootstrap
    from services.reports.facts import Horizon

    infra = ctx.env()
    envs = rb.canonical(await history_envelopes(ctx))
    bus = KafkaBus(infra.bootstrap, enable_idempotence=False, topics=topics.ALL_TOPICS,
                   topic_prefix=prefix_of(ctx, "rebuild"))
    await bus.start()
    try:
        records = [Record(EVENT_TYPES[e.type].TOPIC, e.subject, encode(e)) for e in envs]
        for i in range(0, len(records), CHUNK):
            failed = [r for r in await bus.publish(records[i:i + CHUNK]) if r is not None]
            if failed:
                raise RuntimeError(f"publishing the history failed: {failed[0]!r}")
        url = infra.database()
        runtime = bootstrap(load_settings("reports", database_url=url), bus=MemoryBus())
        await upgrade(runtime.db, runtime.migrations)
        await runtime.db.dispose()
        db, pg_pid = Database(url), getattr(infra.pg, "pid", None)
        try:
            cpu = (own_cpu(), postgres_cpu(pg_pid))
            start = time.perf_counter()
            applied, skipped = await rb.replay_from_bus(
                bus, db, Horizon.of("2021/22 Q1"))
            seconds = time.perf_counter() - start
            client_cpu = own_cpu() - cpu[0]
        finally:
            await db.dispose()
        await asyncio.sleep(0.2)   # the backends exit and are reaped: their CPU is counted
        pg_cpu = postgres_cpu(pg_pid) - cpu[1]
    finally:
        await bus.stop()
    return {"rate": applied / seconds, "applied": applied, "skipped": skipped,
            "published": len(records), "seconds": seconds,
            "client_cpu_ms_per_1000": client_cpu / max(applied, 1) * 1e6,
            "postgres_cpu_ms_per_1000": pg_cpu / max(applied, 1) * 1e6}
