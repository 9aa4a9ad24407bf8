"""Reports: the rebuild command's own path, from the broker (``replay_from_bus``), issue 6.

The ``rebuild`` scenario times the replay and derivation engine from decoded events. A
rebuild from Kafka also fetches every message from the broker, decodes it, validates it
(a malformed one is counted and skipped) and only then replays it, and it must notice that
it has caught up. Here the national history (the same events) is published to topics of its
own, and ``replay_from_bus`` rebuilds a fresh reports database from them in a process of
its own (``bench.rebuild_process``), as ``mandet rebuild-reports --from bus`` does; the
baseline is the engine alone (``rebuild``'s figure, same run).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bench.core import Context, Row, Target, scenario
from bench.scenarios.reports import history_envelopes, populate, postgres_cpu
from bench.scenarios.services import prefix_of
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.bus.memory import MemoryBus
from shared.events import EVENT_TYPES, encode, topics
from shared.migrations import upgrade
from shared.settings import load_settings

CHUNK = 5000
ROOT = Path(__file__).resolve().parents[2]   # where ``python -m bench`` runs from


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
                "detection included, in a process of its own as the command runs (forked "
                "workers, one per core); published to the broker beforehand, not timed; CPU "
                "per 1,000 events: that process and its workers "
                f"{built['client_cpu_ms_per_1000']:.1f} ms, PostgreSQL "
                f"{built['postgres_cpu_ms_per_1000']:.1f} ms")
    return [row]


async def _rebuilt(ctx: Context) -> dict[str, Any]:
    from services.reports import rebuild as rb
    from services.reports.bootstrap import bootstrap

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
        pg_pid = getattr(infra.pg, "pid", None)
        pg_before = postgres_cpu(pg_pid)
        done = await _in_a_process(infra.bootstrap, prefix_of(ctx, "rebuild"), url)
        await asyncio.sleep(0.2)   # the backends exit and are reaped: their CPU is counted
        pg_cpu = postgres_cpu(pg_pid) - pg_before
    finally:
        await bus.stop()
    applied = done["applied"]
    return {"rate": applied / done["seconds"], "applied": applied, "skipped": done["skipped"],
            "published": len(records), "seconds": done["seconds"],
            "client_cpu_ms_per_1000": done["cpu_s"] / max(applied, 1) * 1e6,
            "postgres_cpu_ms_per_1000": pg_cpu / max(applied, 1) * 1e6}


async def _in_a_process(bootstrap: str, prefix: str, url: str) -> dict[str, Any]:
    """``bench.rebuild_process``'s figures: the rebuild from the broker run as the command
    runs, in a small process of its own, not forked from this harness."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.rebuild_process", bootstrap, prefix, url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.rebuild_process failed: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])
