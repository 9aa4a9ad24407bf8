"""Reports: event -> view freshness at 1,000 events/s on the national database (issue 6).

Issue 6's measure: how long after an event is published reports' views show it. Reports runs
as deployed (``mandet worker reports``) on a copy of the rebuilt national database (15,140
homes, eight quarters of stage history), on topics of its own. The harness publishes, open
loop at the run's rate, the traffic reports consumes: ObservationRecorded and ScoreComputed
pairs for residents of the homes in play, and one StageChanged in a hundred (a home's stage
for this quarter, which re-derives that home's facts and counts).

Per event: the commit time of the reports transaction that applied it (PostgreSQL's commit
timestamp of its inbox row, written in the same transaction as the view rows, so the moment
the view shows it) minus the time the event was due to be published (so a publisher stall is
charged to every event behind it). Baseline in the same run: a bare aiokafka consumer in the
harness, same fetch settings, reading the same events (broker round trip, no processing).
The whole pipeline (ingest -> scoring -> view) is the ``freshness`` scenario.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import drive
from bench.core import Context, Row, Target, scenario
from bench.loadgen import steady
from bench.pgutil import connect, fetchval
from bench.scenarios.common import homes
from bench.scenarios.reports import PROGRAMME, populate
from bench.scenarios.services import prefix_of
from bench.stats import PERCENTILES, percentile
from shared.bus.kafka import KafkaBus
from shared.events import ObservationRecorded, encode, topics, wrap
from shared.events.scores import ScoreComputed
from shared.events.stages import StageChanged

PIPELINE, CONSUMER = "events", "reports.views"
NOW = "SELECT clock_timestamp()"
STAGE_EVERY = 100   # one StageChanged in a hundred events
# The services' setting, so the bare consumer waits on the broker as they do.
FETCH_MAX_WAIT_MS = int(os.environ.get("MANDET_KAFKA_FETCH_MAX_WAIT_MS", "50"))
RISKS = (("low", 0.70), ("low-medium", 0.18), ("medium", 0.08), ("high", 0.04))


@dataclass
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    event_id: uuid.UUID


@scenario("reports-freshness")
async def reports_freshness(ctx: Context) -> list[Row]:
    s = drive.sizes(ctx)
    rate = s["rate"]
    row = Row(f"freshness event -> view (reports alone) at {rate:,.0f} events/s", None, "ms",
              None, "bare aiokafka consumer, same events", Target("<=", 100, "ms")
              if rate == 1000 else None)
    built = await populate(ctx)
    infra, prefix = ctx.env(), prefix_of(ctx, PIPELINE)
    if not await _commit_timestamps(built["twin_url"]):
        row.skipped = "needs PostgreSQL's track_commit_timestamp=on (the bench sets it)"
        return [row]
    names = [prefix + t for t in topics.ALL_TOPICS]
    await KafkaBus(infra.bootstrap, enable_idempotence=False).ensure_topics(names)
    worker = await asyncio.to_thread(infra.worker, "reports", built["twin_url"],
                                     "reports-events-worker", prefix)
    in_play = await homes(ctx)
    n = int(rate * (s["warmup"] + s["duration"])) + 1
    events = await asyncio.to_thread(stream, in_play, 200 + n, prefix, seed=301)
    primer, events = events[:200], events[200:]
    floor = _Floor(infra.bootstrap, names)
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all",
                                enable_idempotence=False, linger_ms=1)
    await producer.start()
    await floor.start()
    try:
        # Prime: the group joins (seconds on Tansu) before the clock starts.
        since = await fetchval(built["twin_url"], NOW)
        await _publish(producer, primer, rate=1000.0)
        await _applied(built["twin_url"], {e.event_id for e in primer}, timeout=60, since=since)
        await floor.until(len(primer), timeout=60)
        with steady():   # the harness must not pause mid-phase (see ``steady``)
            due, published = await _publish(producer, events, rate)
            await floor.until(len(primer) + len(events), timeout=10)
        applied = await _applied(built["twin_url"], {e.event_id for e in events}, timeout=60,
                                 since=since)
    finally:
        await floor.stop()
        await producer.stop()
        await asyncio.to_thread(infra.retire, worker)
    measured_from = due[0] + s["warmup"]
    keep = [i for i, t in enumerate(due) if t >= measured_from]
    lags = sorted((applied[events[i].event_id][1] - due[i]) * 1000 for i in keep
                  if events[i].event_id in applied)
    taken = sorted((applied[events[i].event_id][0] - due[i]) * 1000 for i in keep
                   if events[i].event_id in applied)
    floor_lags = sorted((floor.seen[published[i]] - due[i]) * 1000 for i in keep
                        if published[i] in floor.seen)
    if not lags:
        row.skipped = "reports applied none of the events in 60 s"
        return [row]
    p = {f"p{q:g}": percentile(lags, q) for q in PERCENTILES}
    fp = {f"p{q:g}": percentile(floor_lags, q) for q in PERCENTILES} if floor_lags else {}
    span = due[-1] - due[0]
    row.figure, row.baseline = p["p99"], fp.get("p99")
    row.note = (f"published {len(events) / span if span else 0:,.0f} events/s "
                f"(1 in {STAGE_EVERY} a StageChanged, the rest ObservationRecorded + "
                f"ScoreComputed pairs); {len(lags):,} of {len(keep):,} measured events applied; "
                "p50/p95/p99/p99.9 " + "/".join(f"{v:.0f}" for v in p.values()) + " ms; "
                f"due -> taken into a reports transaction p50/p99 {percentile(taken, 50):.0f}/"
                f"{percentile(taken, 99):.0f} ms; bare consumer p50/p99 "
                + (f"{fp['p50']:.0f}/{fp['p99']:.0f} ms" if fp else "n/a")
                + f"; {built['homes']:,} homes with eight quarters of history")
    row.details = {"lag_ms": p, "floor_ms": fp, "measured": len(keep), "applied": len(lags)}
    return [row]


def stream(in_play, n: int, prefix: str, seed: int,  # type: ignore[no-untyped-def]
           stage_every: int | None = STAGE_EVERY, taken_near: datetime | None = None
           ) -> list[Outgoing]:
    """``n`` encoded events, built before the clock starts (see the module docstring);
    ``stage_every=None``: observation and score pairs only; readings are taken up to two
    hours before ``taken_near`` (default: now)."""
    rnd, now = random.Random(seed), datetime.now(UTC)
    near = taken_near or now
    out: list[Outgoing] = []
    while len(out) < n:
        h = rnd.choice(in_play)
        if stage_every and len(out) % stage_every == stage_every - 1:
            event = StageChanged(submission_id=uuid.uuid4(), site_id=h.site_id,
                                 icb_code=h.icb_code, psc_code=h.psc_code, programme=PROGRAMME,
                                 from_tool=None, to_tool="NEWS2 and soft signs",
                                 to_stage=rnd.randint(0, 7), applies_from=now.date(),
                                 reported_at=now, reporter="bench")
            out.append(_out(prefix, event))
            continue
        resident = f"l1_bench{h.site_id}-{rnd.randrange(h.residents)}"
        taken = near - timedelta(minutes=rnd.randint(1, 120))
        obs = ObservationRecorded(
            observation_id=uuid.uuid4(), resident=resident, site_id=h.site_id,
            icb_code=h.icb_code, psc_code=h.psc_code, taken_at=taken, received_at=now,
            source_platform="bench", respiration_rate=Decimal(16), spo2=Decimal(96),
            on_oxygen=False, systolic_bp=Decimal(128), pulse=Decimal(78), consciousness="A",
            temperature_c=Decimal("36.8"))
        risk = rnd.choices([r for r, _ in RISKS], [w for _, w in RISKS])[0]
        total = {"low": 1, "low-medium": 3, "medium": 5, "high": 8}[risk]
        score = ScoreComputed(observation_id=obs.observation_id, resident=resident,
                              site_id=h.site_id, icb_code=h.icb_code, psc_code=h.psc_code,
                              taken_at=taken, scale=1, sub_scores={"pulse": total},
                              total=total, risk=risk, red_score=risk == "low-medium",
                              monitoring="12-hourly")
        out += [_out(prefix, obs), _out(prefix, score)]
    return out[:n]


def _out(prefix: str, event) -> Outgoing:  # type: ignore[no-untyped-def]
    envelope = wrap(event, source="/bench")
    return Outgoing(prefix + event.TOPIC, event.key().encode(), encode(envelope), envelope.id)


async def _publish(producer: AIOKafkaProducer, events: list[Outgoing], rate: float
                   ) -> tuple[list[float], list[tuple[str, int, int]]]:
    """Open loop: event i is due at start + i/rate (wall clock); returns due times and each
    event's (topic, partition, offset) once the broker acknowledged it."""
    start = time.time() + 0.05
    due, futures = [], []
    for i, e in enumerate(events):
        at = start + i / rate
        wait = at - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        due.append(at)
        futures.append(await producer.send(e.topic, e.value, key=e.key))
    meta = await asyncio.gather(*futures)
    return due, [(m.topic, m.partition, m.offset) for m in meta]


async def _applied(url: str, ids: set[uuid.UUID], timeout: float, since: datetime
                   ) -> dict[uuid.UUID, tuple[float, float]]:
    """event id -> (epoch s its reports transaction began, epoch s it committed), waiting
    (bounded) until every id in ``ids`` is there."""
    conn = await connect(url)
    try:
        deadline = time.monotonic() + timeout
        query = ("SELECT event_id, extract(epoch FROM processed_at), "
                 "extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM inbox "
                 "WHERE consumer = $1 AND processed_at >= $2")
        while True:
            rows = await conn.fetch(query, CONSUMER, since)
            got = {r[0]: (float(r[1]), float(r[2])) for r in rows if r[0] in ids}
            if len(got) >= len(ids) or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _commit_timestamps(url: str) -> bool:
    return await fetchval(url, "SHOW track_commit_timestamp") == "on"



class _Floor:
    """A bare consumer: when each (topic, partition, offset) reached the harness."""

    def __init__(self, bootstrap: str, names: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(*names, bootstrap_servers=bootstrap,
                                         group_id=f"bench-floor-{uuid.uuid4().hex[:8]}",
                                         auto_offset_reset="earliest",
                                         fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
        self.seen: dict[tuple[str, int, int], float] = {}

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=1000)
            now = time.time()
            for tp, messages in batch.items():
                for m in messages:
                    self.seen[(tp.topic, tp.partition, m.offset)] = now

    async def until(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()
