"""Scoring's sustained rate, Kafka to committed score on PostgreSQL, beside the pure rate.

1. The pure NEWS2 function on this core (the same inputs as ``bench/news2_pure.py``).
2. N ObservationRecorded events are published to a fresh topic prefix first; then one
   ``mandet worker scoring`` process (consumer + outbox relay, as deployed) starts on a fresh
   PostgreSQL database, and the committed ``scoring_score`` rows are counted every 0.1 s. The
   sustained rate is taken between 10 % and 90 % of N (start-up and the group join excluded).
   Each score also writes its inbox row, outbox events, flags and residents' sites, and the
   relay publishes ScoreComputed/DeteriorationFlagged back to the broker in the same process.
   CPU seconds per 1,000 observations are printed for the worker(s), PostgreSQL (postmaster
   and backends) and the broker over the same span: less sensitive to a busy machine than
   the rate.

PostgreSQL and the broker come from ``tests/infra`` (TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP
honoured). fsync here costs about 35 us, far less than on real disks: say so when quoting.
Run: ``python -m bench.scoring_service [N] [RESIDENTS] [WORKERS]`` (workers share the
partitions, as on the scale path; at most ``PARTITIONS``).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from bench.infra import _cpu
from bench.news2_pure import make_vitals
from services.scoring.domain.news2 import score
from services.scoring.models import SCORE
from shared.bus.base import Record
from shared.bus.kafka import KafkaBus
from shared.db import Database
from shared.events import ObservationRecorded, encode, topics, wrap

SECRET = "bench-secret-that-is-long-enough-0123456789"
PARTITIONS = 6


def pure_rate(n: int = 100_000) -> float:
    batch = make_vitals(n)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for v in batch:
            score(v)
        best = min(best, time.perf_counter() - start)
    return n / best


def observations(n: int, residents: int, seed: int = 5) -> list[Record]:
    rnd, start = random.Random(seed), datetime(2024, 3, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        resident = f"p1_bench{i % residents:06d}"
        event = ObservationRecorded(
            observation_id=uuid.uuid4(), resident=resident, site_id=f"1-{i % 500:06d}",
            icb_code="QJK", psc_code="SW", taken_at=start + timedelta(minutes=i // residents),
            received_at=start, source_platform="bench",
            respiration_rate=Decimal(rnd.randint(10, 26)), spo2=Decimal(rnd.randint(90, 100)),
            on_oxygen=rnd.random() < 0.05, systolic_bp=Decimal(rnd.randint(95, 180)),
            pulse=Decimal(rnd.randint(50, 125)), consciousness=rnd.choice("AAAAAAAAAC"),
            temperature_c=Decimal(f"{rnd.uniform(35.5, 39.0):.1f}"),
            client_news2_total=rnd.randint(0, 6) if rnd.random() < 0.3 else None)
        out.append(Record(topics.OBSERVATIONS, resident, encode(wrap(event, source="/bench"))))
    return out


async def publish(bootstrap: str, prefix: str, records: list[Record]) -> None:
    bus = KafkaBus(bootstrap, enable_idempotence=False, partitions=PARTITIONS,
                   topics=topics.ALL_TOPICS, topic_prefix=prefix)
    await bus.start()
    try:
        for i in range(0, len(records), 5000):
            failed = [r for r in await bus.publish(records[i:i + 5000]) if r is not None]
            assert not failed, failed[:1]
    finally:
        await bus.stop()


def start_worker(db_url: str, bootstrap: str, prefix: str) -> subprocess.Popen:
    env = {**os.environ, "SCORING_DATABASE_URL": db_url, "MANDET_BUS": "kafka",
           "MANDET_ENV": "test", "MANDET_JWT_SECRET": SECRET, "MANDET_LOG_LEVEL": "WARNING",
           "MANDET_KAFKA_BOOTSTRAP": bootstrap, "MANDET_KAFKA_PARTITIONS": str(PARTITIONS),
           "MANDET_KAFKA_ENABLE_IDEMPOTENCE": "false", "MANDET_KAFKA_TOPIC_PREFIX": prefix}
    args = ["-m", "mandet.cli", "worker", "scoring"]
    if "scoring-worker" in os.environ.get("BENCH_PROFILE", "").split(","):
        out = Path(__file__).parent / "results" / "profile-scoring-worker.txt"
        args = ["-m", "pyinstrument", "-r", "text", "-o", str(out), *args]
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL)


Sample = tuple[float, int, dict[str, float]]  # (wall time, committed scores, CPU s by name)


def cpu_now(workers: list[int], pg_pid: int | None, broker_pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) used so far: the workers, PostgreSQL with its backends, the
    broker (0 for a process that is not ours or has exited)."""
    out = {"worker": sum(_cpu(pid) for pid in workers)}
    for name, pid in (("postgres", pg_pid), ("broker", broker_pid)):
        out[name] = _cpu(pid, children=True) if pid is not None else 0.0
    return out


async def watch(db_url: str, n: int, cpu: Callable[[], dict[str, float]],
                deadline_s: float = 600) -> list[Sample]:
    db, samples = Database(db_url, pool_size=0), []
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < deadline_s:
            try:
                async with db.engine.connect() as conn:
                    done = (await conn.execute(select(func.count()).select_from(SCORE))).scalar()
            except Exception:  # noqa: BLE001 - the table appears once the worker migrated
                done = 0
            samples.append((time.perf_counter(), int(done or 0), cpu()))
            if done == n:
                break
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()
    return samples


def sustained(samples: list[Sample], n: int) -> tuple[float, dict[str, float]]:
    """Observations/s, and CPU seconds per 1,000 observations by process, between 10 % and
    90 % of N."""
    lo = next(s for s in samples if s[1] >= n * 0.1)
    hi = next(s for s in samples if s[1] >= n * 0.9)
    done = hi[1] - lo[1]
    return done / (hi[0] - lo[0]), {k: (hi[2][k] - lo[2][k]) * 1000 / done for k in hi[2]}


async def service_rate(n: int, residents: int,
                       workers: int = 1) -> tuple[float, dict[str, float]]:
    from tests.infra.broker import start_broker
    from tests.infra.postgres import start_postgres

    pg, broker = start_postgres(), start_broker()
    try:
        prefix, db_url = f"b{uuid.uuid4().hex[:8]}.", pg.create_database()
        await publish(broker.bootstrap, prefix, observations(n, residents))
        procs = [start_worker(db_url, broker.bootstrap, prefix) for _ in range(workers)]
        try:
            pids = [p.pid for p in procs]
            samples = await watch(db_url, n, lambda: cpu_now(pids, pg.pid, broker.pid))
        finally:
            for worker in procs:
                worker.send_signal(signal.SIGINT)   # a clean stop (and a profiler's report)
            for worker in procs:
                worker.wait(timeout=30)
        if samples[-1][1] != n:
            raise SystemExit(f"only {samples[-1][1]:,} of {n:,} scored before the deadline")
        return sustained(samples, n)
    finally:
        broker.stop()
        pg.stop()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    residents = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    pure = pure_rate()
    rate, cpu = asyncio.run(service_rate(n, residents, workers))
    print(f"pure NEWS2 function: {pure:,.0f} scores/s (one core)")
    print(f"scoring service, Kafka -> committed score on PostgreSQL: {rate:,.0f} observations/s "
          f"({workers} worker process(es), {n:,} observations, {residents:,} residents, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    print("CPU s per 1,000 observations (user + system, same 10-90 % span): "
          + ", ".join(f"{k} {v:.3f}" for k, v in cpu.items()))


if __name__ == "__main__":
    main()
