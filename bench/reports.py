"""``python -m bench.reports``: QART views at national scale, standalone.

15,140 sites over 42 ICBs (15 PSCs, 7 regions), eight quarters of stage returns. Measures, in
one run: rebuild rate (bulk replay + deriving every fact), view query latency (adoption by PSC
for one quarter, through ``queries.adoption``) against a naive recompute (latest record per
site by window function, GROUP BY, over the raw history, on every query), and event-to-view
freshness with StageChanged arriving at a steady rate through the memory bus.
Use ``--database-url`` for PostgreSQL; the default is a SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import text

from services.reports import queries, rebuild
from services.reports.bootstrap import bootstrap
from services.reports.domain.adoption import Ambitions
from services.reports.domain.stages import ordinal
from services.reports.facts import Horizon
from shared.bus.base import Record
from shared.bus.memory import MemoryBus
from shared.events import encode, wrap
from shared.events.sites import SiteRegistered
from shared.events.stages import StageChanged
from shared.migrations import upgrade
from shared.quarters import Quarter
from shared.settings import load_settings

FIRST, PROGRAMME = "2021/22 Q1", "deterioration"
CLOCK = datetime(2023, 3, 15, tzinfo=UTC)   # 2022/23 Q4: eight quarters from FIRST
Q4 = ordinal(Quarter.parse("2022/23 Q4"))
NAIVE = """SELECT s.psc_code, COUNT(*), SUM(CASE WHEN r.stage >= 3 THEN 1 ELSE 0 END),
  SUM(CASE WHEN r.stage >= 5 THEN 1 ELSE 0 END), SUM(CASE WHEN r.stage = 7 THEN 1 ELSE 0 END)
  FROM reports_site s LEFT JOIN (
    SELECT site_id, stage, ROW_NUMBER() OVER (PARTITION BY site_id
      ORDER BY applies_from DESC, reported_at DESC, event_id DESC) AS rn
    FROM reports_stage_record WHERE programme = :p AND applies_from <= :end) r
  ON r.site_id = s.site_id AND r.rn = 1 GROUP BY s.psc_code"""


def history(sites: int, rnd: random.Random) -> list:
    out = []
    for n in range(sites):
        icb = n % 42
        site_id = f"1-{1000000 + n}"
        out.append(wrap(SiteRegistered(site_id=site_id, revision=1, name=f"H{n}",
                                       setting_type="care_home", icb_code=f"I{icb:02d}",
                                       psc_code=f"P{icb % 15:02d}", region=f"R{icb % 7}"),
                        source="bench"))
        stage = 0
        for qn in range(ordinal(Quarter.parse(FIRST)), Q4 + 1):
            stage = min(7, stage + rnd.choice((0, 0, 1, 1, 2)))
            q = Quarter(qn // 4, qn % 4 + 1)
            out.append(wrap(StageChanged(
                submission_id=uuid.uuid4(), site_id=site_id, icb_code=f"I{icb:02d}",
                psc_code=f"P{icb % 15:02d}", programme=PROGRAMME, from_tool=None,
                to_tool="NEWS2 and soft signs", to_stage=stage,
                applies_from=date.fromordinal(q.start.toordinal() + rnd.randrange(80)),
                reported_at=CLOCK, reporter="bench"), source="bench"))
    return out


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


async def main(sites: int, url: str | None, rate: float, seconds: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    settings = load_settings("reports", data_dir=tmp, first_quarter=FIRST,
                             **({"database_url": url} if url else {}))
    bus = MemoryBus(partitions=6)
    runtime = bootstrap(settings, bus=bus, clock=lambda: CLOCK)
    await upgrade(runtime.db, runtime.migrations)
    events = history(sites, random.Random(7))
    horizon = Horizon.of(FIRST, lambda: CLOCK)
    start = time.perf_counter()
    for i in range(0, len(events), 5000):
        async with runtime.db.transaction() as s:
            await rebuild.replay(s, rebuild.canonical(events[i:i + 5000]), horizon)
    replayed = time.perf_counter() - start
    facts = await rebuild.rebuild_from_history(runtime.db, horizon)
    total = time.perf_counter() - start
    print(f"{runtime.db.dialect}: {sites:,} sites, {len(events):,} events, {facts:,} facts")
    print(f"rebuild: {len(events) / total:,.0f} events/s (replay {replayed:.1f} s, "
          f"derive {total - replayed:.1f} s)")
    await _queries(runtime)
    await _freshness(runtime, bus, sites, rate, seconds)
    await runtime.db.dispose()


async def _queries(runtime, n: int = 200) -> None:  # noqa: ANN001
    view, naive = [], []
    async with runtime.db.session() as s:
        for _ in range(n):
            t = time.perf_counter()
            await queries.adoption(s, area=queries.Area("psc"), programme=PROGRAMME, first=Q4,
                                   last=Q4, tool="*", targets=Ambitions())
            view.append((time.perf_counter() - t) * 1000)
        for _ in range(max(n // 10, 5)):
            t = time.perf_counter()
            await s.execute(text(NAIVE), {"p": PROGRAMME, "end": date(2023, 3, 31)})
            naive.append((time.perf_counter() - t) * 1000)
    print(f"view query (adoption by PSC, one quarter): p50 {pct(view, 50):.1f} ms, "
          f"p99 {pct(view, 99):.1f} ms; naive recompute p50 {pct(naive, 50):.1f} ms, "
          f"p99 {pct(naive, 99):.1f} ms")


async def _freshness(runtime, bus, sites: int, rate: float, seconds: float) -> None:  # noqa: ANN001
    runner = runtime.consumers[0]
    topic, handler = runner.handlers[StageChanged.TYPE]
    pending: list[datetime] = []
    lags: list[float] = []

    async def timed(session, envelope, event):  # noqa: ANN001, ANN202
        await handler(session, envelope, event)
        pending.append(envelope.time)

    def committed() -> None:
        now = datetime.now(UTC)
        lags.extend((now - t).total_seconds() * 1000 for t in pending)
        pending.clear()

    runner.handlers[StageChanged.TYPE] = (topic, timed)
    runner.after_commit = committed
    await runtime.start(relay=False)
    rnd, sent = random.Random(3), 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) * rate) - sent
        for _ in range(due):
            n = rnd.randrange(sites)
            e = wrap(StageChanged(
                submission_id=uuid.uuid4(), site_id=f"1-{1000000 + n}", icb_code="I00",
                psc_code="P00", programme=PROGRAMME, from_tool=None, to_tool="NEWS2",
                to_stage=rnd.randrange(8), applies_from=date(2022, rnd.randrange(4, 13), 1),
                reported_at=datetime.now(UTC), reporter="bench"), source="bench")
            await bus.publish([Record("adoption.stages", e.subject, encode(e))])
        sent += due
        await asyncio.sleep(0.005)
    deadline = time.perf_counter() + 30
    while len(lags) < sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    await runtime.stop()
    achieved = sent / seconds
    print(f"freshness (late corrections, {achieved:,.0f} events/s offered for {seconds:.0f} s, "
          f"{len(lags):,} applied): p50 {pct(lags, 50):.0f} ms, p99 {pct(lags, 99):.0f} ms")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sites", type=int, default=15_140)
    p.add_argument("--database-url", default=None)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    asyncio.run(main(a.sites, a.database_url, a.rate, a.seconds))
