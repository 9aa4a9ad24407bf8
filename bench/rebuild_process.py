"""``python -m bench.rebuild_process BOOTSTRAP PREFIX DATABASE_URL``: the rebuild from the
broker in a process of its own, as ``mandet rebuild-reports --from bus`` runs it.

The ``rebuild-bus`` scenario starts it: forked from the benchmark's harness (over 2 GB by then
in a full run) the replay's workers paid for the harness's size, copying its pages as they
wrote into them, which the command, a small process, does not (see bench/README.md, ninth
session). Times ``replay_from_bus`` alone, as the scenario did in-process, and prints one JSON
line: events applied, messages skipped, seconds, and the CPU seconds of this process and its
forked workers.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.core import own_cpu
from services.reports import rebuild
from services.reports.facts import Horizon
from shared.bus.kafka import KafkaBus
from shared.db import Database
from shared.events import topics

FIRST = "2021/22 Q1"


async def main(bootstrap: str, prefix: str, url: str) -> dict[str, float]:
    bus = KafkaBus(bootstrap, enable_idempotence=False, topics=topics.ALL_TOPICS,
                   topic_prefix=prefix)   # a reader only: nothing published, no producer
    db = Database(url)
    try:
        cpu, start = own_cpu(), time.perf_counter()
        applied, skipped = await rebuild.replay_from_bus(bus, db, Horizon.of(FIRST))
        seconds = time.perf_counter() - start
        return {"applied": applied, "skipped": skipped, "seconds": seconds,
                "cpu_s": own_cpu() - cpu}
    finally:
        await db.dispose()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
