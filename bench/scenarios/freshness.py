"""Observation -> score -> view freshness under constant load (target p99 <= 100 ms).

Single sets are posted to ingest at the run's rate (1,000/s; 200/s with ``--quick``) through
a pipeline of its own (ingest, scoring and reports on fresh databases and topics, started for
this scenario), after the register's site events have drained through it.
Score leg, per set: scoring's ``scored_at`` minus ingest's ``received_at`` (ingest commit ->
outbox relay -> broker -> scoring consumer).
View leg: a poller reads reports' running total of scored sets
(``reports_activity.scored_sets``) every 10 ms; the k-th score of the run counts as visible at
the first poll whose total has grown by k (so the figure carries up to one poll interval and
assumes scores reach the view in the order they were scored).
All stamps come from processes on this machine's one clock. The anchors' one-second tick is
quoted for scale.
"""

from __future__ import annotations

import asyncio
import bisect
from datetime import datetime

from bench import drive
from bench.core import Context, Row, Target, Unavailable, scenario
from bench.pgutil import connect, fetchval
from bench.scenarios.common import native_bodies
from bench.scenarios.ingest import ready_ingest
from bench.scenarios.services import Service, count, retire, service, wait_rows
from bench.stats import PERCENTILES, percentile

PIPELINE = "fresh"  # its own databases and topics: no backlog from earlier scenarios
SCORED = "SELECT count(*) FROM scoring_score"
VIEW_TOTAL = "SELECT coalesce(sum(scored_sets), 0) FROM reports_activity"
NOW = "SELECT clock_timestamp()"


@scenario("freshness")
async def freshness(ctx: Context) -> list[Row]:
    try:
        return await _freshness(ctx)
    finally:
        await retire(ctx, PIPELINE)   # the last scenario of this pipeline


async def _freshness(ctx: Context) -> list[Row]:
    scoring = await service(ctx, "scoring", [], pipeline=PIPELINE)
    ingest, auth = await ready_ingest(ctx, "/observation-sets", PIPELINE)
    reports = await _optional(ctx, "reports")
    backlog = await _drain(ingest, scoring, reports)
    rate = drive.sizes(ctx)["rate"]
    bodies = await native_bodies(ctx, drive.needed(ctx, rate), seed=201)
    since = await fetchval(ingest.database_url, NOW)
    poll = _Poller(reports.database_url) if reports else None
    if poll:
        await poll.start()
    try:
        load = await drive.constant(ctx, ingest.port, "/observation-sets", bodies, headers=auth)
        stored = await count(ingest.database_url, "SELECT count(*) FROM ingest_observation_set "
                             f"WHERE received_at >= '{since.isoformat()}'")
        scores = await _scores(scoring.database_url, since, stored)
        if poll:
            await poll.until(len(scores), timeout=60)
    finally:
        if poll:
            await poll.stop()
    score_ms = sorted((s - r).total_seconds() * 1000 for r, s in scores)
    view_ms = poll.lags(scores) if poll else []
    rows = [_row(ctx, rate, "score", score_ms, load, stored, len(scores)),
            _row(ctx, rate, "score -> view", view_ms, load, stored, len(view_ms),
                 "" if reports else "reports is not running")]
    relays = {name: await _relay_waits(svc.database_url, since)
              for name, svc in (("ingest", ingest), ("scoring", scoring))}
    rows[0].details["relay_wait_ms"] = relays
    rows[0].note += "; where the time goes, outbox row committed -> published p50/p99: " + \
        ", ".join(f"{name} {w['p50']:.0f}/{w['p99']:.0f} ms" for name, w in relays.items() if w) \
        + "; events a relay round: " + ", ".join(
            f"{name} {w['per_round']:.1f}" for name, w in relays.items() if w)
    taken = await _consumed_after_publish(ingest.database_url, scoring.database_url, since,
                                          "ObservationRecorded")
    rows[0].details["scoring_consumed_after_publish_ms"] = taken
    if taken:
        rows[0].note += ("; ObservationRecorded published -> taken into a scoring transaction "
                         f"p50/p99 {taken['p50']:.0f}/{taken['p99']:.0f} ms")
    if reports:
        taken = await _consumed_after_publish(scoring.database_url, reports.database_url, since)
        rows[1].details["reports_consumed_after_publish_ms"] = taken
        if taken:
            rows[1].note += ("; ScoreComputed published by scoring's relay -> taken into a "
                             f"reports transaction p50/p99 {taken['p50']:.0f}/{taken['p99']:.0f}"
                             " ms")
    for row in rows:
        row.note += backlog
    return rows


async def _consumed_after_publish(producer_url: str, consumer_url: str, since: datetime,
                                  event_type: str = "ScoreComputed") -> dict[str, float]:
    """Per event of ``event_type``: the consumer's inbox row (stamped as its batch starts)
    minus the time the producer's relay marked it published (ms): broker plus consumer."""
    conn = await connect(producer_url)
    try:
        published = {r[0]: r[1] for r in await conn.fetch(
            "SELECT event_id, published_at FROM outbox WHERE created_at >= $1 "
            "AND event_type = $2 AND published_at IS NOT NULL", since, event_type)}
    finally:
        await conn.close()
    conn = await connect(consumer_url)
    try:
        taken = await conn.fetch("SELECT event_id, processed_at FROM inbox WHERE "
                                 "processed_at >= $1", since)
    finally:
        await conn.close()
    lags = sorted((at - published[i]).total_seconds() * 1000 for i, at in taken
                  if i in published)
    return {f"p{q:g}": percentile(lags, q) for q in (50, 99)} if lags else {}


async def _relay_waits(url: str, since: datetime) -> dict[str, float]:
    """How long each outbox row written since ``since`` waited for the relay (ms), and how
    many rows a relay round published on average (a round marks its rows with one
    ``published_at``): the pattern the broker sees from the product."""
    conn = await connect(url)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM published_at - created_at) * 1000, published_at "
            "FROM outbox WHERE created_at >= $1 AND published_at IS NOT NULL", since)
    finally:
        await conn.close()
    waits = sorted(r[0] for r in rows)
    if not waits:
        return {}
    out = {f"p{q:g}": percentile(waits, q) for q in (50, 99)}
    return out | {"per_round": len(rows) / len({r[1] for r in rows})}


def _row(ctx: Context, rate: float, leg: str, lags: list[float], load, stored: int,  # type: ignore[no-untyped-def]
         seen: int, missing: str = "") -> Row:
    p = {f"p{q:g}": percentile(lags, q) for q in PERCENTILES}
    quick = "" if rate == 1000 else " (the target is judged at 1,000 events/s only)"
    row = Row(f"freshness observation -> {leg} at {rate:,.0f}/s offered", p["p99"], "ms", 1000.0,
              "the anchors' 1 s tick", Target("<=", 100, "ms") if rate == 1000 else None,
              note=f"ingest achieved {load.achieved_rate:,.0f} sets/s; {seen:,} of {stored:,} "
                   "stored sets reached this leg; p50/p95/p99/p99.9 "
                   + "/".join(f"{v:.0f}" for v in p.values()) + f" ms{quick}",
              details={"lag_ms": p, "stored": stored, "seen": seen, "load": load.as_dict()})
    if missing:
        row.skipped = f"not available yet: {missing}"
    return row


async def _optional(ctx: Context, name: str) -> Service | None:
    try:
        return await service(ctx, name, [], pipeline=PIPELINE)
    except Unavailable:
        return None


async def _drain(ingest: Service, scoring: Service, reports: Service | None) -> str:
    """Let earlier work reach every leg (bounded): earlier scenarios' sets, and reports' copy
    of the register (else the load starts behind its site events). Says what is behind."""
    total = await count(ingest.database_url, "SELECT count(*) FROM ingest_observation_set")
    scored = await wait_rows(scoring.database_url, SCORED, total, timeout=120)
    behind = [f"scoring {total - scored:,} sets"] if scored < total else []
    if reports:   # its register copy too: 15,140 site events queued ahead of the first score
        sites = await count(ingest.database_url, "SELECT count(*) FROM ingest_site")
        copied = await wait_rows(reports.database_url, "SELECT count(*) FROM reports_site",
                                 sites, timeout=120)
        behind += [f"reports {sites - copied:,} site events"] if copied < sites else []
        seen = await wait_rows(reports.database_url, VIEW_TOTAL, scored, timeout=120)
        behind += [f"reports {scored - seen:,} scores"] if seen < scored else []
    if not behind:
        return ""
    return ("; BACKLOG from earlier scenarios was not drained in 120 s (" + ", ".join(behind)
            + " behind): this leg's figure includes that queue")



async def _scores(url: str, since: datetime, want: int) -> list[tuple[datetime, datetime]]:
    """(received_at, scored_at) of the sets received since ``since``, in scoring order."""
    query = f"FROM scoring_score WHERE received_at >= '{since.isoformat()}'"
    await wait_rows(url, f"SELECT count(*) {query}", want, timeout=120)
    conn = await connect(url)
    try:
        rows = await conn.fetch(f"SELECT received_at, scored_at {query} ORDER BY scored_at")
        return [(r[0], r[1]) for r in rows]
    finally:
        await conn.close()


class _Poller:
    """(clock time, reports' total of scored sets) every 10 ms, on one connection."""

    def __init__(self, url: str) -> None:
        self.url, self.points = url, []  # type: ignore[var-annotated]
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._conn = await connect(self.url)
        self.base = int(await self._conn.fetchval(VIEW_TOTAL))
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            row = await self._conn.fetchrow(f"SELECT clock_timestamp(), ({VIEW_TOTAL})")
            self.points.append((row[0], int(row[1]) - self.base))
            await asyncio.sleep(0.01)

    async def until(self, n: int, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (not self.points or self.points[-1][1] < n) and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._conn.close()

    def lags(self, scores: list[tuple[datetime, datetime]]) -> list[float]:
        return view_lags(self.points, [received for received, _ in scores])


def view_lags(points: list[tuple[datetime, int]], received: list[datetime]) -> list[float]:
    """ms from each set's receipt (in scoring order) to the first poll counting it as seen."""
    totals = [t for _, t in points]
    out = []
    for k, at in enumerate(received, start=1):
        i = bisect.bisect_left(totals, k)  # totals only grow
        if i < len(points):
            out.append((points[i][0] - at).total_seconds() * 1000)
    return sorted(out)
