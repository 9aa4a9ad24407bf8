"""(b) asyncpg COPY of the same observation rows into an ingest-shaped table.

The ceiling for batch and FHIR ingest: the rows they would store, already prepared (pseudonym,
content hash and decimal text computed before the clock starts), copied in 1,000-row COPYs,
one transaction each, on one connection.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench import payloads
from bench.core import Context, Row, scenario
from bench.pgutil import OBSERVATION_COLUMNS, OBSERVATION_TABLE, connect
from bench.scenarios.common import homes

CHUNK = 1000


def rows_for(sets: list[dict[str, Any]], icb_of: dict[str, tuple[str, str]]) -> list[tuple]:
    now = datetime.now(UTC)
    out = []
    for s in sets:
        icb, psc = icb_of[s["site_id"]]
        who = s.get("nhs_number") or s["local_id"]
        out.append((uuid.uuid4(), "p1_" + hashlib.sha256(who.encode()).hexdigest()[:32],
                    s["site_id"], icb, psc, datetime.fromisoformat(s["taken_at"]), now, "bench",
                    s["platform_set_id"], hashlib.sha256(json.dumps(s).encode()).hexdigest(),
                    str(s["respiration_rate"]), str(s["spo2"]), s["on_oxygen"],
                    str(s["systolic_bp"]), str(s["pulse"]), s["consciousness"],
                    str(s["temperature"]), None, "[]", None, None))
    return out


async def copy_rate(ctx: Context) -> float:
    """Rows per second COPYed (cached: batch and FHIR rows quote the same figure)."""
    async def measure() -> float:
        in_play = await homes(ctx)
        sets = payloads.observation_sets(in_play, ctx.size(200_000, 10_000), seed=23)
        rows = rows_for(sets, {h.site_id: (h.icb_code, h.psc_code) for h in in_play})
        conn = await connect(ctx.env().database())
        try:
            await conn.execute(OBSERVATION_TABLE)
            start = time.perf_counter()
            for i in range(0, len(rows), CHUNK):
                async with conn.transaction():
                    await conn.copy_records_to_table("bench_observation_set",
                                                     records=rows[i:i + CHUNK],
                                                     columns=OBSERVATION_COLUMNS)
            return len(rows) / (time.perf_counter() - start)
        finally:
            await conn.close()
    return await ctx.cached("copy-rate", measure)


@scenario("copy")
async def copy(ctx: Context) -> list[Row]:
    return [Row("baseline (b): asyncpg COPY, 1,000-row transactions", await copy_rate(ctx),
                "rows/s", note="PostgreSQL here runs with fsync off (tests/infra): write "
                "figures are not durable-disk figures")]
