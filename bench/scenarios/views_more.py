"""``views-more``: every QART view read while observation traffic runs, p99 open loop.

Issue 6: "with 15,140 sites over the 42 real ICBs, eight quarters of history and observation
traffic running: view queries p99 at most 20 ms". The ``views`` row reads ``GET /adoption``
with nothing else running; this scenario reads, with a dashboard token, one row each:

- ``GET /activity?level=icb&first=2021/22 Q1&last=2022/23 Q4`` (a dashboard's eight-quarter
  trend by ICB),
- ``GET /transitions?level=psc&quarter=2022/23 Q4&programme=deterioration``,
- ``GET /quality?quarter=2022/23 Q4&programme=deterioration`` (each list's count and its
  first page, 100 sites, as a dashboard opens it),
- ``GET /adoption?level=psc&quarter=2022/23 Q4&programme=deterioration`` (the ``views``
  row's query, here under traffic),
- ``GET /activity?level=icb&quarter=2022/23 Q4&programme=deterioration&tool=NEWS2 and soft
  signs`` (activity of the homes whose stage in force names that tool, which every stage of
  the bench's history does: read from the per-tool roll-ups, which the traffic moves as it
  moves the all-tools ones),

while a reports worker applies observation traffic to the same database (``Traffic``:
observation and score pairs, open loop at the run's rate, 1,000 events/s in a full run,
readings taken in 2022/23 Q4, the data set's latest quarter, which every read covers: so
the traffic changes what activity and quality answer, as live readings would). Each view
has a traffic (and worker) of its own, on fresh topics (``TRAFFIC_S`` says why).
Reports caches a view's rows per version (``services/reports/api.py: ViewCache``): activity
per quarter, and the traffic's quarter changes with every transaction it commits, so that
quarter's part hits only between two; data quality per quarter under a version that changes
only when a site's observations in it start or end, which this traffic (at homes all
observed in the quarter already, as mid-quarter) never does, so it hits after its first
read; adoption and transitions change only with the register or a stage, which this
traffic leaves alone (a stage change costs the next reader a cold read, in each note).

A sixth row reads data quality at a quarter's start (``START_VIEW``): after the others, a
second traffic takes its readings in the first days of the quarter after the data set's
last, where no home has a reading yet, so nearly every transaction it commits gives some
home its first reading there and a new data-quality version, and the next read misses.
A seventh, with no target, then reads the same lists whole as the CSV download
(``START_CSV``). Their notes say how many homes had their first reading before and after.

The database is a copy of the rebuilt national one (``reports.populate``'s ``template_url``,
which nothing connects to: the ``views`` API holds its ``url``) with activity added
for every home in play and each of the eight quarters of the data set: a ``reports_activity``
row (about three sets a resident, nearly all scored and complete, mostly low risk, a few
flags) and a ``reports_activity_resident`` row per resident (10 % of a home's residents change
each quarter), written by COPY with a version row per quarter as a replay writes them, then
``rebuild_from_history`` derives reports' roll-ups (and keeps those quarters' data-quality
lists). As
every home has activity, ``/quality`` counts every home below stage 4 (4,564 of 15,140 in
2022/23 Q4; the whole list was an answer of about 0.3 MB) and no home at stage 5 without
observations. Each
route is read once on the fresh API process before the traffic starts (the cold read), then,
under traffic, ten times in a row (service time), at saturation for 2 s (closed loop, the
run's senders), then driven open loop at the ``views`` row's rate. A route so far below that
rate at saturation that the queue an open loop builds could not drain within the load
generator's drain window is not driven: most of its requests would count as unanswered (p99
inf) while the API went on with them into the next route's figures. Its row then reports inf,
its saturation and its sequential reads.

Baseline: the ``views`` row's, the naive ``DISTINCT ON`` + ``GROUP BY`` over the raw stage
history (p99), measured once per run.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from bench import drive
from bench.core import Context, Row, Target, scenario
from bench.dataset import QUARTERS, Home
from bench.loadgen import DRAIN_S
from bench.pgutil import connect
from bench.scenarios.common import homes
from bench.scenarios.reports import PROGRAMME, naive_latencies, populate
from bench.scenarios.services import paths_of
from bench.stats import Summary, percentile
from shared.auth import Role
from shared.db import Database

FIRST, LAST = "2021/22 Q1", "2022/23 Q4"   # the data set's eight quarters
# The traffic's readings are taken in LAST, the data set's "current" quarter, which every
# view read covers: live readings land in the quarter a dashboard is watching.
TAKEN_NEAR = datetime(2023, 2, 15, 12, tzinfo=UTC)
# Then readings in the first days of the quarter after, where no home has any yet: each
# home's first reading there changes what data quality answers for it (``START_VIEW``).
START, TAKEN_AT_START = "2023/24 Q1", datetime(2023, 4, 3, 12, tzinfo=UTC)
START_TRAFFIC_S = 85.0   # each of its two views' reads take about 20
ACT_COLUMNS = ("site_id", "qn", "icb_code", "psc_code", "observation_sets", "scored_sets",
               "complete_sets", "risk_low", "risk_low_medium", "risk_medium", "risk_high",
               "red_scores", "flags", "claim_mismatches")
RES_COLUMNS = ("site_id", "qn", "resident", "sets")
TURNOVER = 0.1   # share of a home's residents replaced each quarter
SERVICE_READS = 10
SATURATION_S = 2.0   # closed loop, after the run's warm-up
SATURATION_CAP = 5000.0   # requests/s the closed loop has requests for (the bare endpoint's)
# Seconds of observation traffic built for each view (its reads take about 20). Each view has
# a traffic of its own, on fresh topics: the test broker (Tansu 0.6, memory storage) spends
# CPU on a fetch in proportion to the records its partition holds (one consumer at 1,000
# events/s: 18 % of a core in the first 10 s, 90 % after 50 s, measured 30 November), so one
# traffic for all five views took the broker from a tenth to four fifths of a core of this
# two-core machine by the last of them. Apache Kafka finds a fetch's offset by its index.
TRAFFIC_S = 45.0
TOOL = "NEWS2 and soft signs"   # the tool every stage of the bench's history names
PRIME = 200   # traffic events applied before any view is measured
# The traffic reaches the broker in rounds, as the product's relays publish it: at 1,000
# single-set POSTs/s they published 14.9 (ingest) and 54.4 (scoring) events a round (the
# `freshness` row's note, 30 November); a round every 15 ms is ingest's pattern at this rate.
ROUND_S = 0.015


@dataclass(frozen=True)
class View:
    label: str
    route: str
    query: str

    @property
    def path(self) -> str:
        return f"{self.route}?{self.query}"


def _q(label: str) -> str:
    return quote(label, safe="")


VIEWS = (
    View("activity by ICB, eight quarters", "/activity",
         f"level=icb&first={_q(FIRST)}&last={_q(LAST)}"),
    View("transitions by PSC", "/transitions",
         f"level=psc&quarter={_q(LAST)}&programme={PROGRAMME}"),
    View("data quality", "/quality", f"quarter={_q(LAST)}&programme={PROGRAMME}"),
    View("adoption by PSC", "/adoption", f"level=psc&quarter={_q(LAST)}&programme={PROGRAMME}"),
    View("activity by ICB for one tool, one quarter", "/activity",
         f"level=icb&quarter={_q(LAST)}&programme={PROGRAMME}&tool={_q(TOOL)}"),
)
START_VIEW = View("data quality at a quarter's start, homes' first readings", "/quality",
                  f"quarter={_q(START)}&programme={PROGRAMME}")
# The same lists whole, as the CSV download gives them: a download, not a dashboard's view
# query (JSON pages the lists), so no target; measured so what a whole list costs shows.
START_CSV = View("data quality at a quarter's start, every item as CSV (a download: no "
                 "target)", "/quality", f"quarter={_q(START)}&programme={PROGRAMME}&format=csv")


@scenario("views-more")
async def views_more(ctx: Context) -> list[Row]:
    naive = await naive_latencies(ctx)
    label = f"naive GROUP BY p99, {len(await homes(ctx)):,} homes"
    rows = [Row(f"QART view query p99 ({v.label})", None, "ms", percentile(naive, 99), label,
                Target("<=", 20, "ms")) for v in (*VIEWS, START_VIEW)]
    at_start = [rows.pop(), Row(f"QART view query p99 ({START_CSV.label})", None, "ms",
                                percentile(naive, 99), label)]
    try:
        built = await populate(ctx)
    except (ImportError, AttributeError) as exc:
        return _skipped([*rows, *at_start],
                        f"not available yet: services.reports.rebuild ({exc})"[:200])
    started = time.perf_counter()
    url, filled = await with_activity(ctx, built)
    infra = ctx.env()
    api = await asyncio.to_thread(infra.serve, "reports", url, "reports-views-more-api")
    paths, token = await paths_of(api), infra.token(Role.DASHBOARD, sub="bench-dashboard")
    present = [(v, r) for v, r in zip(VIEWS, rows, strict=True) if v.route in paths]
    for view, row in zip(VIEWS, rows, strict=True):
        if view.route not in paths:
            row.skipped = f"not available yet: reports has no {view.route} route"
    # Every first read before any load, so each is a cold read on an idle API process.
    cold = {v.path: (await _reads(api.port, v.path, token, 1))[0] for v, _ in present}
    for i, (view, row) in enumerate(present):
        # A traffic of its own per view, on topics that start empty (``TRAFFIC_S``).
        traffic = await Traffic.start(ctx, url, pipeline=f"views-more-{i}", seed=907 + i)
        try:
            before = traffic.figures()
            await _measure(ctx, api.port, token, view, row, cold[view.path])
            row.note += f"; {traffic.note(before)}; {filled['note']}"
            row.details["activity"] = {k: v for k, v in filled.items() if k != "note"}
            row.details["traffic"] = traffic.figures()
        finally:
            await traffic.stop()
    try:
        if START_VIEW.route in paths:
            await _at_start(ctx, url, api.port, token, at_start)
        else:
            _skipped(at_start, f"not available yet: reports has no {START_VIEW.route} route")
    finally:
        await asyncio.to_thread(infra.retire, api)
    rows[0].details["wall_s"] = time.perf_counter() - started   # populate and baseline excluded
    return [*rows, *at_start]


async def _at_start(ctx: Context, url: str, port: int, token: str, rows: list[Row]) -> None:
    """Data quality of ``START`` read while readings land in its first days at homes with
    none there yet: a home's first reading in a quarter changes that quarter's data-quality
    version (``ViewCache``), so until most homes have read once, nearly every traffic
    transaction makes the next read a miss. The cold read is taken under this traffic; the
    JSON page first, then the whole lists as CSV (each note says how many homes had read
    before its reads and after)."""
    from services.reports.domain.stages import ordinal
    from shared.quarters import Quarter

    qn, in_play = ordinal(Quarter.parse(START)), len(await homes(ctx))

    async def observed() -> int:
        conn = await connect(url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM reports_activity WHERE "
                                           "qn = $1 AND observation_sets > 0", qn))
        finally:
            await conn.close()

    traffic = await Traffic.start(ctx, url, taken_near=TAKEN_AT_START, name="views-start",
                                  seconds=START_TRAFFIC_S)
    try:
        for view, row in zip((START_VIEW, START_CSV), rows, strict=True):
            before, first = traffic.figures(), await observed()
            cold = (await _reads(port, view.path, token, 1))[0]
            await _measure(ctx, port, token, view, row, cold)
            last = await observed()
            row.note += (f"; {traffic.note(before)}; {first:,} of {in_play:,} homes had "
                         f"their first {START} reading before these reads, {last:,} after "
                         "(none before the traffic)")
            row.details |= {"homes_observed_before": first, "homes_observed_after": last,
                            "homes": in_play}
    finally:
        await traffic.stop()


class Traffic:
    """Observation traffic into the measured database while the views are read: a reports
    worker (``mandet worker reports``) on that database, on topics of its own, consuming what
    the harness publishes open loop at the run's rate (``reports-freshness``' stream without
    its StageChanged: ObservationRecorded + ScoreComputed pairs only, the issue's "observation
    traffic", taken in ``LAST``). Each applied transaction writes a new version for that
    quarter, so its cached activity lasts only until the next one (the other quarters' stay
    cached); data quality (no home's observations there start or end: all are observed
    already), adoption and transitions keep theirs until a register or stage change, which
    this traffic does not send (the note of each row gives the cold read, which is what such
    a change costs the next reader)."""

    def __init__(self, url: str, producer: Any, events: list, rate: float, worker: Any,
                 infra: Any) -> None:
        self.url, self.producer, self.events, self.rate = url, producer, events, rate
        self.worker, self.infra = worker, infra   # a bench.infra.Proc, its bench.infra.Infra
        self.sent, self.started = 0, time.perf_counter()
        self.task: asyncio.Task | None = None

    @classmethod
    async def start(cls, ctx: Context, url: str, *, taken_near: datetime = TAKEN_NEAR,
                    name: str = "views-more", seconds: float = TRAFFIC_S,
                    pipeline: str | None = None, seed: int = 907) -> Traffic:
        """A worker named after ``name`` on topics of their own (``pipeline``'s,
        else ``name``'s), and ``seconds`` of traffic at the run's rate built from ``seed``."""
        from aiokafka import AIOKafkaProducer

        from bench.scenarios.reports_freshness import stream
        from bench.scenarios.services import prefix_of
        from shared.bus.kafka import KafkaBus
        from shared.events import topics

        infra, prefix = ctx.env(), prefix_of(ctx, pipeline or name)
        await KafkaBus(infra.bootstrap, enable_idempotence=False).ensure_topics(
            [prefix + t for t in topics.ALL_TOPICS])
        worker = await asyncio.to_thread(infra.worker, "reports", url,
                                         f"reports-{name}-worker", prefix)
        rate = drive.sizes(ctx)["rate"]
        events = await asyncio.to_thread(stream, await homes(ctx), int(rate * seconds),
                                         prefix, seed, stage_every=None,
                                         taken_near=taken_near)
        producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all",
                                    enable_idempotence=False, linger_ms=1)
        await producer.start()
        traffic = cls(url, producer, events, rate, worker, infra)
        await traffic._prime()
        traffic.task = asyncio.create_task(traffic._publish())
        return traffic

    async def _prime(self) -> None:
        """A first batch, applied before the clock starts (the worker's group joins)."""
        first, already = self.events[:PRIME], await self._applied()   # an earlier traffic's
        for e in first:
            await self.producer.send(e.topic, e.value, key=e.key)
        await self.producer.flush()
        deadline = time.monotonic() + 60
        while await self._applied() < already + len(first):
            if time.monotonic() > deadline:
                raise RuntimeError("the traffic's reports worker applied nothing in 60 s")
            await asyncio.sleep(0.2)
        self.sent = len(first)

    async def _publish(self) -> None:
        """Open loop at ``rate`` until stopped or out of events (then it says so): every
        ``ROUND_S``, the events due by then, sent together (one produce request)."""
        start, base, events = time.time(), self.sent, self.events
        while self.sent < len(events):
            due = min(len(events), base + int((time.time() - start) * self.rate) + 1)
            for e in events[self.sent:due]:
                await self.producer.send(e.topic, e.value, key=e.key)
            self.sent = due
            await asyncio.sleep(ROUND_S)

    async def _applied(self) -> int:
        conn = await connect(self.url)
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = 'reports.views'"))
        finally:
            await conn.close()

    def figures(self) -> dict[str, float]:
        return {"sent": self.sent, "at": time.perf_counter(),
                "ran_out": float(self.task is not None and self.task.done())}

    def note(self, before: dict[str, float]) -> str:
        now = self.figures()
        rate = (now["sent"] - before["sent"]) / max(now["at"] - before["at"], 1e-9)
        out = (f"meanwhile {rate:,.0f} observation/score events/s published to a reports "
               f"worker on this database")
        return out + (" (the traffic RAN OUT before the end)" if now["ran_out"] else "")

    async def stop(self) -> None:
        """Stop publishing, then the worker (``Infra.retire``: idle, it would still cost the
        broker CPU in every later scenario)."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.producer.stop()
        await asyncio.to_thread(self.infra.retire, self.worker)


def _skipped(rows: list[Row], reason: str) -> list[Row]:
    for row in rows:
        row.skipped = reason
    return rows


async def _measure(ctx: Context, port: int, token: str, view: View, row: Row,
                   cold: tuple[float, int]) -> None:
    """Service time (sequential reads), saturation (closed loop), then the open loop unless
    the queue it would build could not drain in time."""
    rate, headers = ctx.size(200.0, 20.0), {"Authorization": f"Bearer {token}"}
    serial = sorted(ms for ms, _ in await _reads(port, view.path, token, SERVICE_READS))
    most = int(SATURATION_CAP * (drive.sizes(ctx)["warmup"] + SATURATION_S))
    sat = await drive.saturate(ctx, port, view.path, [b""] * most, headers=headers, ok=(200,),
                               duration=SATURATION_S, method="GET")
    read = (f"cold first read {cold[0]:.1f} ms, then {SERVICE_READS} in a row p50/p99 "
            f"{percentile(serial, 50):.1f}/{percentile(serial, 99):.1f} ms; saturation "
            f"{sat.achieved_rate:,.0f}/s (closed loop, {sat.errors} errors); one answer is "
            f"{cold[1]:,} bytes; reports caches rows per version (views stamp; activity "
            f"per quarter, also under that quarter's version, so a quarter the traffic lands "
            f"in hits only between two traffic transactions; data quality per quarter under "
            f"a version that changes only when a home's first or last reading there comes "
            f"or goes)")
    row.details |= {"cold_read_ms": cold[0], "sequential_ms": serial,
                    "saturation": sat.as_dict()}
    row.scenario = (f"QART view query p99 ({view.label}, observation traffic, open loop "
                    f"{rate:,.0f}/s)")
    backlog_s = _backlog_s(ctx, rate, sat)
    if backlog_s > DRAIN_S:
        # Driven, most requests would be unanswered past the drain and count as errors
        # (p99 inf), while the API went on with them into the next figures: not driven.
        row.scenario = row.scenario[:-1] + ": NOT driven)"
        row.figure = math.inf
        row.note = (f"not driven: at {sat.achieved_rate:,.0f}/s, {rate:,.0f}/s would leave "
                    f"about {backlog_s:,.0f} s of queue, past the load generator's "
                    f"{DRAIN_S:.0f} s drain, so p99 would be inf (unanswered); {read}")
        return
    load = await drive.constant(ctx, port, view.path, [b""] * drive.needed(ctx, rate),
                                method="GET", rate=rate, ok=(200,), headers=headers)
    row.figure, row.details = load.latency_ms["p99"], row.details | load.as_dict()
    row.note = (f"achieved {load.achieved_rate:,.0f}/s, {load.errors} errors, p50/p95/p99 "
                + "/".join(f"{v:.1f}" for v in list(load.latency_ms.values())[:3])
                + f" ms; {read}")


def _backlog_s(ctx: Context, rate: float, sat: Summary) -> float:
    """Seconds the queue left by an open loop at ``rate`` would take to drain at saturation
    (0 if it keeps up, or if the closed loop measured nothing: all answered in warm-up)."""
    if not sat.sent or sat.achieved_rate >= rate:
        return 0.0
    s = drive.sizes(ctx)
    return (rate - sat.achieved_rate) * (s["warmup"] + s["duration"]) / max(
        sat.achieved_rate, 1e-9)


async def _reads(port: int, path: str, token: str, n: int) -> list[tuple[float, int]]:
    """``n`` GETs in a row on one connection: (milliseconds, answer bytes) each; anything but
    200 fails the scenario."""
    out = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for _ in range(n):
            start = time.perf_counter()
            r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            out.append(((time.perf_counter() - start) * 1000, len(r.content)))
            if r.status_code != 200:
                raise RuntimeError(f"GET {path} answered {r.status_code}: {r.text[:200]}")
    return out


async def with_activity(ctx: Context, built: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A copy of the rebuilt national database with activity for every home in play."""
    from services.reports.domain.stages import ordinal
    from services.reports.facts import Horizon
    from services.reports.rebuild import rebuild_from_history
    from shared.quarters import Quarter

    began = time.perf_counter()
    url = await asyncio.to_thread(ctx.env().database, built["template_url"])
    clone_s, first = time.perf_counter() - began, ordinal(Quarter.parse(FIRST))
    conn = await connect(url)
    try:
        start = time.perf_counter()
        acts, residents = await copy_activity(conn, await homes(ctx),
                                              range(first, first + QUARTERS))
        copy_s = time.perf_counter() - start
    finally:
        await conn.close()
    await _analyze(url)
    db, start = Database(url), time.perf_counter()
    try:
        await rebuild_from_history(db, Horizon.of(FIRST))
    finally:
        await db.dispose()
    rebuild_s = time.perf_counter() - start
    await _analyze(url)   # whatever the rebuild derived has statistics too
    note = (f"database: the rebuilt national one plus {acts:,} activity rows and "
            f"{residents:,} resident rows (COPY {copy_s:.1f} s, rows generated as sent; "
            f"rebuild {rebuild_s:.1f} s)")
    return url, {"activity_rows": acts, "resident_rows": residents, "clone_s": clone_s,
                 "copy_s": copy_s, "rebuild_s": rebuild_s,
                 "setup_s": time.perf_counter() - began, "note": note}


async def _analyze(url: str) -> None:
    conn = await connect(url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def copy_activity(conn: Any, in_play: Sequence[Home], qns: Sequence[int]
                        ) -> tuple[int, int]:
    """COPY the residents' rows as they are generated, then the activity rows, and a version
    row per quarter (``reports_activity_quarter``, as a replay writes it: its quarters'
    data-quality lists are then kept, ``services/reports/quality.py``); the counts."""
    acts: list[tuple] = []

    def residents() -> Iterator[tuple]:
        for act, rows in site_quarters(in_play, qns):
            acts.append(act)
            yield from rows

    res = await conn.copy_records_to_table("reports_activity_resident", records=residents(),
                                           columns=RES_COLUMNS)
    await conn.copy_records_to_table("reports_activity", records=acts, columns=ACT_COLUMNS)
    await conn.executemany("INSERT INTO reports_activity_quarter (qn, version) VALUES ($1, $2)",
                           [(qn, uuid.uuid4().hex) for qn in qns])
    return len(acts), int(res.split()[-1])


def site_quarters(in_play: Sequence[Home], qns: Sequence[int], seed: int = 11
                  ) -> Iterator[tuple[tuple, list[tuple]]]:
    """Per home (in site order) and quarter, in key order: its activity row (ACT_COLUMNS) and
    its residents' rows (RES_COLUMNS). Deterministic for a seed."""
    rnd = random.Random(seed)
    for home in sorted(in_play, key=lambda h: h.site_id):
        pool = [_pseudonym(rnd) for _ in range(home.residents)]
        for qn in qns:
            pool = [_pseudonym(rnd) if rnd.random() < TURNOVER else p for p in pool]
            sets = sorted((p, 1 + rnd.randrange(5)) for p in pool)   # 1-5 sets, mean 3
            yield (_counters(rnd, home, qn, sum(n for _, n in sets)),
                   [(home.site_id, qn, p, n) for p, n in sets])


def _pseudonym(rnd: random.Random) -> str:
    return f"p1_{rnd.getrandbits(128):032x}"   # ingest's shape: prefix + 128-bit hex


def _counters(rnd: random.Random, home: Home, qn: int, sets: int) -> tuple:
    """One activity row: nearly every set scored and complete, risk mostly low."""
    scored = sets - _some(rnd, sets, 0.01)
    complete = scored - _some(rnd, scored, 0.02)
    high, medium, low_medium = (_some(rnd, scored, p) for p in (0.02, 0.05, 0.08))
    low = scored - high - medium - low_medium
    return (home.site_id, qn, home.icb_code, home.psc_code, sets, scored, complete, low,
            low_medium, medium, high, _some(rnd, scored, 0.04), high + _some(rnd, scored, 0.01),
            _some(rnd, scored, 0.01))


def _some(rnd: random.Random, n: int, share: float) -> int:
    """About ``share`` of ``n`` (rounded at random, so small shares still occur)."""
    return int(n * share + rnd.random())
