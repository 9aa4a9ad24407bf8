"""Reports: QART view queries (vs a naive GROUP BY over raw history) and rebuild from history.

Baselines run now, against tables of their own: the naive query recomputes "share of homes at
stage >= 3 / >= 5 / = 7 per PSC at a quarter end" from every stage record of the national
data set (DISTINCT ON the latest record per home, then GROUP BY); the consumer ceiling decodes,
parses and dispatches every history event with no database write. The view figure needs
reports' view routes (issue 6); the rebuild figure needs ``services.reports.rebuild``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx

from bench import drive
from bench.core import Context, Row, Target, own_cpu, scenario
from bench.pgutil import connect
from bench.scenarios.common import dataset, homes
from bench.scenarios.services import paths_of
from bench.stats import percentile
from shared.auth import Role
from shared.bus.memory import MemoryBus
from shared.db import Database
from shared.events import Envelope, encode, read, wrap
from shared.events.sites import SiteRegistered
from shared.events.stages import StageChanged
from shared.migrations import upgrade
from shared.settings import load_settings

HISTORY = """CREATE TABLE bench_stage_history (site_id text, psc_code text, icb_code text,
  applies_from date, stage int); CREATE INDEX ON bench_stage_history (site_id, applies_from)"""
NAIVE = """SELECT psc_code, count(*) AS homes, count(*) FILTER (WHERE stage >= 3) AS decision,
  count(*) FILTER (WHERE stage >= 5) AS adoption, count(*) FILTER (WHERE stage = 7) AS sustained
  FROM (SELECT DISTINCT ON (site_id) site_id, psc_code, stage FROM bench_stage_history
        WHERE applies_from <= $1 ORDER BY site_id, applies_from DESC) latest
  GROUP BY psc_code"""
QUARTER_END = date(2023, 3, 31)  # 2022/23 Q4
VIEW, PROGRAMME = "/adoption", "deterioration"


async def naive_latencies(ctx: Context) -> list[float]:
    async def measure() -> list[float]:
        data, in_play = await dataset(ctx), {h.site_id for h in await homes(ctx)}
        where = {h.site_id: h for h in data.homes}
        rows = [(s.site_id, where[s.site_id].psc_code, where[s.site_id].icb_code,
                 s.applies_from, s.stage) for s in data.stages if s.site_id in in_play]
        conn = await connect(ctx.env().database())
        try:
            await conn.execute(HISTORY)
            await conn.copy_records_to_table("bench_stage_history", records=rows)
            await conn.execute("ANALYZE bench_stage_history")
            out = []
            for _ in range(ctx.size(100, 10)):
                start = time.perf_counter()
                await conn.fetch(NAIVE, QUARTER_END)
                out.append((time.perf_counter() - start) * 1000)
            return sorted(out)
        finally:
            await conn.close()
    return await ctx.cached("naive-groupby", measure)


@scenario("views")
async def views(ctx: Context) -> list[Row]:
    """Reports' API on the rebuilt national database (nothing else writes to it meanwhile)."""
    naive = await naive_latencies(ctx)
    row = Row("QART view query p99 (adoption by PSC)", None, "ms", percentile(naive, 99),
              f"naive GROUP BY p99, {len(await homes(ctx)):,} homes", Target("<=", 20, "ms"))
    try:
        built = await populate(ctx)
    except (ImportError, AttributeError) as exc:
        row.skipped = f"not available yet: services.reports.rebuild ({exc})"[:200]
        return [row]
    infra = ctx.env()
    api = await asyncio.to_thread(infra.serve, "reports", built["url"], "reports-views-api")
    if VIEW not in await paths_of(api):
        row.skipped = f"not available yet: reports has no {VIEW} route"
        return [row]
    token = infra.token(Role.DASHBOARD, sub="bench-dashboard")
    rate = ctx.size(200.0, 20.0)
    path = f"{VIEW}?level=psc&quarter=2022%2F23%20Q4&programme={PROGRAMME}"
    cold = await _cold_reads(api.port, token)
    answer = await _probe(api.port, path, token)
    bodies = [b""] * drive.needed(ctx, rate)
    load = await drive.constant(ctx, api.port, path, bodies, method="GET", rate=rate, ok=(200,),
                                headers={"Authorization": f"Bearer {token}"})
    row.scenario = f"QART view query p99 (adoption by PSC, open loop {rate:,.0f}/s)"
    row.figure, row.details = load.latency_ms["p99"], load.as_dict()
    row.note = (f"achieved {load.achieved_rate:,.0f}/s, {load.errors} errors, p50/p95/p99 "
                + "/".join(f"{v:.1f}" for v in list(load.latency_ms.values())[:3])
                + f" ms; one answer is {answer:,} bytes; {built['homes']:,} homes rebuilt; "
                f"reads repeat, so they hit reports' per-stamp cache (a stage or register "
                f"change invalidates it): a cold read (8 quarters, each once) took p50/max "
                f"{percentile(cold, 50):.1f}/{max(cold):.1f} ms")
    row.details["cold_read_ms"] = cold
    return [row]


async def _cold_reads(port: int, token: str) -> list[float]:
    """Each quarter once: the first read after a change computes its rows (cache miss)."""
    out = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for year in (2021, 2022):
            for q in range(1, 5):
                start = time.perf_counter()
                r = await client.get(f"{VIEW}?level=psc&quarter={year}%2F{year - 1999:02d}%20Q{q}"
                                     f"&programme={PROGRAMME}",
                                     headers={"Authorization": f"Bearer {token}"})
                out.append((time.perf_counter() - start) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"cold read answered {r.status_code}: {r.text[:200]}")
    return sorted(out)


async def _probe(port: int, path: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    if r.status_code != 200:
        raise RuntimeError(f"GET {path} answered {r.status_code}: {r.text[:200]}")
    return len(r.content)


def history(ctx_homes, stages) -> list[Envelope]:  # type: ignore[no-untyped-def]
    """SiteRegistered for each home, then a StageChanged per home per quarter."""
    now = datetime.now(UTC)
    out = [wrap(SiteRegistered(site_id=h.site_id, revision=1, name=f"Home {h.site_id}",
                               setting_type="care_home", icb_code=h.icb_code,
                               psc_code=h.psc_code, region=h.region), source="adoption")
           for h in ctx_homes]
    where = {h.site_id: h for h in ctx_homes}
    for s in stages:
        h = where.get(s.site_id)
        if h is not None:
            out.append(wrap(StageChanged(
                submission_id=uuid.uuid4(), site_id=s.site_id, icb_code=h.icb_code,
                psc_code=h.psc_code, programme=PROGRAMME, from_tool=None,
                to_tool="NEWS2 and soft signs", to_stage=s.stage, applies_from=s.applies_from,
                reported_at=now, reporter="bench"), source="adoption"))
    return out


def consumer_ceiling(raw: list[bytes]) -> float:
    """Read (decode + parse, ``shared.events.read``) + dispatch lookup per event, no database:
    the consumer minus its writes."""
    handlers = {SiteRegistered.TYPE: None, StageChanged.TYPE: None}
    start = time.perf_counter()
    for value in raw:
        envelope, _ = read(value)   # type: ignore[misc]  # wanted: all
        handlers.get(envelope.type)
    return len(raw) / (time.perf_counter() - start)


@scenario("rebuild")
async def rebuild(ctx: Context) -> list[Row]:
    ceiling = await consumer_ceiling_rate(ctx)
    row = Row("rebuild from history (sites + stage records)", None, "events/s", ceiling,
              "consumer decode+dispatch, writes disabled", Target(">=", 50_000, "events/s"))
    try:
        built = await populate(ctx)
    except (ImportError, AttributeError) as exc:
        row.skipped = f"not available yet: services.reports.rebuild ({exc})"[:200]
        return [row]
    row.figure, row.details = built["rate"], built
    row.note = (f"{built['replayed']:,} of {built['events']:,} events replayed and every "
                f"fact derived in {built['seconds']:.1f} s (forked workers, one per core); "
                f"CPU per 1,000 events: harness and workers "
                f"{built['client_cpu_ms_per_1000']:.1f} ms, "
                f"PostgreSQL {built['postgres_cpu_ms_per_1000']:.1f} ms")
    return [row]


async def consumer_ceiling_rate(ctx: Context) -> float:
    envs = await history_envelopes(ctx)
    raw = [encode(e) for e in envs]
    return await asyncio.to_thread(consumer_ceiling, raw)


async def history_envelopes(ctx: Context) -> list[Envelope]:
    async def make() -> list[Envelope]:
        data, in_play = await dataset(ctx), await homes(ctx)
        return await asyncio.to_thread(history, in_play, data.stages)
    return await ctx.cached("history-envelopes", make)


async def populate(ctx: Context) -> dict[str, Any]:
    """Rebuild a fresh reports database from the history with the rebuild's engine alone
    (``replay_envelopes``: decoded events, no broker; split between forked workers, one per
    core, as the rebuild command splits the broker's partitions). Migrated by reports' own
    migrations.
    """
    async def build() -> dict[str, Any]:
        from services.reports import rebuild as rb
        from services.reports.bootstrap import bootstrap
        from services.reports.facts import Horizon

        url = ctx.env().database()
        runtime = bootstrap(load_settings("reports", database_url=url), bus=MemoryBus())
        await upgrade(runtime.db, runtime.migrations)
        await runtime.db.dispose()
        envs = rb.canonical(await history_envelopes(ctx))
        db, horizon = Database(url), Horizon.of("2021/22 Q1")
        pg_pid = getattr(ctx.env().pg, "pid", None)
        try:
            cpu = (own_cpu(), postgres_cpu(pg_pid))
            start = time.perf_counter()
            replayed = await rb.replay_envelopes(db, horizon, envs)
            total = time.perf_counter() - start
            client_cpu = own_cpu() - cpu[0]
        finally:
            await db.dispose()
        await asyncio.sleep(0.2)   # the backend exits and is reaped: its CPU is then counted
        pg_cpu = postgres_cpu(pg_pid) - cpu[1]
        # A copy for the scenario that writes (reports-freshness): the views scenario reads
        # this one with nothing else writing, and a template needs no open connections. And
        # one nobody connects to, for scenarios that clone the rebuilt database later (by
        # then the views API holds connections to this one).
        twin = await asyncio.to_thread(ctx.env().database, url)
        template = await asyncio.to_thread(ctx.env().database, url)
        return {"url": url, "twin_url": twin, "template_url": template,
                "rate": replayed / total, "replayed": replayed,
                "events": len(envs), "seconds": total,
                # CPU per 1,000 events replayed: this process and its forked workers (replay
                # and derivation code, the driver) and PostgreSQL (every process of the
                # private server)
                "client_cpu_ms_per_1000": client_cpu / max(replayed, 1) * 1e6,
                "postgres_cpu_ms_per_1000": pg_cpu / max(replayed, 1) * 1e6,
                "homes": len(await homes(ctx))}
    return await ctx.cached("reports-populated", build)


def postgres_cpu(pid: int | None) -> float:
    """CPU seconds of the private PostgreSQL so far, exited backends included (0: external)."""
    from bench.infra import _cpu

    return 0.0 if pid is None else _cpu(pid, children=True)
