"""Ingest: single set (vs the bare endpoint), batch and FHIR bundle (vs asyncpg COPY).

Each figure is reconciled with the rows ingest actually stored: a 200 answer to a batch can
carry per-item rejections, so the stored count, not the status, says whether work was done.
"""

from __future__ import annotations

import asyncio

from bench import drive, payloads
from bench.core import Context, Row, Target, scenario
from bench.scenarios.common import bare_port, homes, native_bodies
from bench.scenarios.copy import copy_rate
from bench.scenarios.http_baseline import bare_constant, bare_saturation
from bench.scenarios.services import Service, count, publish_sites, service, wait_rows
from bench.stats import Summary
from shared.auth import Role

STORED = "SELECT count(*) FROM ingest_observation_set"
DRAINED = "SELECT NOT EXISTS (SELECT FROM outbox WHERE published_at IS NULL)"  # index-cheap
BATCH, SETS_PER_BUNDLE = 1000, 20


async def ready_ingest(ctx: Context, route: str, pipeline: str = "main"
                       ) -> tuple[Service, dict[str, str]]:
    """Ingest up, knowing every home in play; a platform token covering all 15 PSCs."""
    svc = await service(ctx, "ingest", [route], pipeline=pipeline)
    n = await publish_sites(ctx, pipeline)
    got = await wait_rows(svc.database_url, "SELECT count(*) FROM ingest_site", n)
    if got < n:
        raise RuntimeError(f"ingest knows {got} of {n} sites after waiting")
    pscs = sorted({h.psc_code for h in await homes(ctx)})
    token = ctx.env().token(Role.PLATFORM, sub="bench-platform", pscs=pscs)
    return svc, {"Authorization": f"Bearer {token}"}


async def stored_during(svc: Service, run) -> tuple[Summary, int]:  # type: ignore[no-untyped-def]
    before = await count(svc.database_url, STORED)
    summary = await run()
    return summary, await count(svc.database_url, STORED) - before


def cpu_per_unit(ctx: Context, before: dict[str, float], units: int,
                 names: tuple[str, ...] = ("ingest-api", "ingest-worker", "postgres")) -> str:
    """CPU microseconds per stored unit of the named processes over one phase: the cost
    figure that survives a noisy machine (throughput and latency do not)."""
    per = _cpu_per_set(ctx, before, units)
    return "CPU us per set: " + ", ".join(f"{n} {per.get(n, 0.0):,.0f}" for n in names)


def reconcile(stored: int, summary: Summary, per_request: int) -> str:
    expected = summary.all_ok * per_request
    if stored >= expected:
        return f"{stored:,} sets stored as answered"
    return f"ONLY {stored:,} of {expected:,} answered sets were stored (rejections?)"


@scenario("ingest-single")
async def single(ctx: Context) -> list[Row]:
    svc, auth = await ready_ingest(ctx, "/observation-sets")
    rate = drive.sizes(ctx)["rate"]
    sat_b, con_b = await bare_saturation(ctx), await bare_constant(ctx)
    bodies = await native_bodies(ctx, ctx.size(150_000, 20_000), seed=101)
    cpu = ctx.env().cpu_seconds()
    sat, stored = await stored_during(svc, lambda: drive.saturate(
        ctx, svc.port, "/observation-sets", bodies, headers=auth))
    sat_cpu = cpu_per_unit(ctx, cpu, stored)
    bodies = await native_bodies(ctx, drive.needed(ctx, rate), seed=102)
    cpu = ctx.env().cpu_seconds()
    con, stored2 = await stored_during(svc, lambda: drive.constant(
        ctx, svc.port, "/observation-sets", bodies, headers=auth))
    con_cpu = cpu_per_unit(ctx, cpu, stored2)
    at = "" if rate == 1000 else " (the target is judged at 1,000/s only)"
    return [Row("single-set ingest, saturation", sat.achieved_rate, "sets/s",
                sat_b.achieved_rate, "bare endpoint", Target(">=", 3000, "sets/s"),
                note=f"{_lat(sat)}; {reconcile(stored, sat, 1)}; {sat_cpu}",
                details=sat.as_dict()),
            Row(f"single-set ingest, p99 at {rate:,.0f}/s", con.latency_ms["p99"], "ms",
                con_b.latency_ms["p99"], "bare endpoint",
                Target("<=", 25, "ms") if rate == 1000 else None,
                note=f"open loop: achieved {con.achieved_rate:,.0f}/s, {_lat(con)}, "
                     f"{con.errors} errors; {reconcile(stored2, con, 1)}{at}; {con_cpu}",
                details=con.as_dict())]


@scenario("ingest-batch")
async def batch(ctx: Context) -> list[Row]:
    svc, auth = await ready_ingest(ctx, "/observation-sets/batch")
    sets = await _sets(ctx, ctx.size(400_000, 20_000), seed=103)
    bodies = payloads.batches(sets, BATCH)
    bare = await _bare_rate(ctx, "/observation-sets/batch", bodies, {}, BATCH)
    copy = await copy_rate(ctx)  # measured first: its CPU is not the batch path's
    cpu_before = ctx.env().cpu_seconds()
    summary, stored = await stored_during(svc, lambda: drive.saturate(
        ctx, svc.port, "/observation-sets/batch", bodies, headers=auth, workers=4,
        ok=(200,)))
    drained = await wait_rows(svc.database_url, DRAINED, 1, timeout=120)
    per_set = _cpu_per_set(ctx, cpu_before, stored)
    details = summary.as_dict() | {"cpu_us_per_set": per_set, "copy_rows_per_s": copy}
    return [Row("batch ingest (1,000 sets a request)", summary.achieved_rate * BATCH, "sets/s",
                bare, "bare endpoint, same batches", Target(">=", 50_000, "sets/s"),
                note=f"{summary.achieved_rate:,.1f} requests/s, {_lat(summary)}; "
                     f"{reconcile(stored, summary, BATCH)}; asyncpg COPY of 1,000-row "
                     f"transactions {copy:,.0f} rows/s; CPU us a stored set, load phase "
                     f"and the relay's drain{'' if drained else ' (NOT drained in 120 s)'}: "
                     + ", ".join(f"{k} {v:.0f}" for k, v in per_set.items()),
                details=details)]


async def _bare_rate(ctx: Context, path: str, bodies: list, headers: dict[str, str],
                     per_request: int) -> float:
    """Baseline (a) for a bulk route: the bare endpoint validating the same bodies, saturated
    as the real one is (4 senders), in units (sets, observations) per second. It stores
    nothing, so the bodies may repeat: four rounds, lest a fast baseline run out of them."""
    port = await bare_port(ctx)
    summary = await drive.saturate(ctx, port, path, list(bodies) * 4, headers=headers,
                                   workers=4, ok=(200,))
    return summary.achieved_rate * per_request


def _cpu_per_set(ctx: Context, before: dict[str, float], stored: int) -> dict[str, float]:
    """CPU microseconds per stored set of each process since ``before`` (the harness is the
    load generator); steadier than rates on a shared machine."""
    after = ctx.env().cpu_seconds()
    return {k: (v - before.get(k, 0.0)) * 1e6 / max(stored, 1)
            for k, v in sorted(after.items(), key=lambda kv: kv[0])}


@scenario("ingest-fhir")
async def fhir(ctx: Context) -> list[Row]:
    svc, auth = await ready_ingest(ctx, "/fhir")
    sets = await _sets(ctx, ctx.size(200_000, 10_000), seed=104)
    bodies = [payloads.encode(payloads.fhir_bundle(sets[i:i + SETS_PER_BUNDLE]))
              for i in range(0, len(sets), SETS_PER_BUNDLE)]
    fhir_json = {"Content-Type": "application/fhir+json"}
    obs = SETS_PER_BUNDLE * payloads.OBSERVATIONS_PER_SET
    bare = await _bare_rate(ctx, "/fhir", bodies, fhir_json, obs)
    summary, stored = await stored_during(svc, lambda: drive.saturate(
        ctx, svc.port, "/fhir", bodies, headers=fhir_json | auth, workers=4, ok=(200,)))
    return [Row(f"FHIR Bundle ingest ({obs} Observations a Bundle)", summary.achieved_rate * obs,
                "obs/s", bare, "bare endpoint, same Bundles", Target(">=", 10_000, "obs/s"),
                note=f"{summary.achieved_rate:,.1f} Bundles/s, {_lat(summary)}; "
                     f"{reconcile(stored, summary, SETS_PER_BUNDLE)}; asyncpg COPY of "
                     f"1,000-row transactions {await copy_rate(ctx):,.0f} rows/s (a row = a set "
                     "of seven observations)",
                details=summary.as_dict())]


async def _sets(ctx: Context, n: int, seed: int) -> list[dict]:
    in_play = await homes(ctx)
    return await asyncio.to_thread(payloads.observation_sets, in_play, n, seed=seed)


def _lat(s: Summary) -> str:
    text = "p50/p95/p99/p99.9 " + "/".join(f"{v:.1f}" for v in s.latency_ms.values()) + " ms"
    if s.errors:
        text += f" (answers: {s.statuses})"
    return text
