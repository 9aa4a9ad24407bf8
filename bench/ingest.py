# ruff: noqa: E402
"""Ingest throughput on PostgreSQL, next to a bare FastAPI endpoint that only validates.

Starts a private PostgreSQL (tests/infra), then two uvicorn servers (one worker each, uvloop
and httptools when installed): ingest with its relay running (memory bus), and a bare app
whose endpoints validate the same JSON with the same edge models and return. A small raw
HTTP/1.1 keep-alive client drives both in this process, so the ratio is visible:

  single   POST /observation-sets at saturation (sets/s) and p99 at a fixed 1,000 sets/s
  batch    POST /observation-sets/batch, 1,000 sets per request (sets/s)
  fhir     POST /fhir Bundles of 40 sets x 7 Observations (observations/s)

Every set is a different resident (distinct valid NHS numbers), so a Bundle really holds 40
sets. Bodies are encoded before each phase's clock starts, and each server's own CPU time
(user + system, from /proc) per set or observation is printed too: on a shared machine it is
far steadier than throughput. The load average is printed with the results.

Run: ``python bench/ingest.py [seconds-per-phase]``. On this 2-core machine the client, the
server and PostgreSQL share the cores, and fsync costs about 35 microseconds (far cheaper
than real disks): read write throughput with that in mind.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds other scripts (one is called http.py): keep it off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import asyncio
import json
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from services.ingest.api import _parse
from services.ingest.fhir_models import Bundle, Observation
from services.ingest.schemas import BatchIn, ObservationSetIn
from shared.auth import Principal, Role, TokenService, require

SECRET = "bench-secret-that-is-long-enough-0123456789"
HOME = "1-5868490225"
PORTS = {"ingest": 18081, "bare": 18082}


# ----------------------------------------------------------------------------- servers

def serve(kind: str) -> None:
    """Run one server in this process (the subprocess entry point)."""
    import uvicorn

    app = _ingest_app() if kind == "ingest" else _bare_app()
    uvicorn.run(app, host="127.0.0.1", port=PORTS[kind], log_level="warning",
                access_log=False)


def _ingest_app():
    from sqlalchemy import insert

    from services.ingest.bootstrap import bootstrap, create_app
    from services.ingest.models import KnownSite
    from shared.settings import load_settings

    runtime = bootstrap(load_settings("ingest", jwt_secret=SECRET, pseudonym_key=SECRET,
                                      env="test", log_level="WARNING"))

    async def know_site() -> None:  # bench shortcut: the copy normally follows site events
        async with runtime.db.transaction() as session:
            await session.execute(insert(KnownSite.__table__).values(
                site_id=HOME, icb_code="QJK", psc_code="SW", revision=1))

    runtime.startup_steps.append(know_site)
    return create_app(runtime)


Platform = Annotated[Principal, Depends(require(Role.PLATFORM))]


def _bare_app() -> FastAPI:
    app = FastAPI()
    app.state.tokens = TokenService(SECRET)

    @app.post("/observation-sets", status_code=201)
    async def one(body: ObservationSetIn, _: Platform) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "outcome": "accepted"}

    @app.post("/observation-sets/batch")
    async def batch(body: BatchIn, _: Platform) -> dict[str, Any]:
        return {"accepted": sum(1 for raw in body.items if not hasattr(_parse(raw), "errors"))}

    @app.post("/fhir")
    async def fhir(request: Request, _: Platform) -> dict[str, Any]:
        doc = Bundle.model_validate(json.loads(await request.body(), parse_float=Decimal))
        return {"n": len([Observation.model_validate(e.resource) for e in doc.entry])}

    return app


def _start(kind: str, db_url: str | None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MANDET_LOG_LEVEL": "WARNING"}
    if db_url:
        env["INGEST_DATABASE_URL"] = db_url
    return subprocess.Popen([sys.executable, __file__, "serve", kind], env=env)


# ----------------------------------------------------------------------------- client

class Conn:
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes, token: str) -> int:
        head = (f"POST {path} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def saturate(port: int, path: str, bodies, token: str, seconds: float,
                   conns: int = 32) -> tuple[int, float, int]:
    """Closed loop: ``conns`` connections back to back; (requests done, elapsed, errors)."""
    pool = [Conn(port) for _ in range(conns)]
    await asyncio.gather(*(c.open() for c in pool))
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def loop(c: Conn) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            status = await c.post(path, next(bodies), token)
            done += 1
            errors += status >= 300
    start = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in pool))
    return done, time.perf_counter() - start, errors


async def paced(port: int, path: str, bodies, token: str, rate: int, seconds: float,
                conns: int = 64) -> list[float]:
    """Open loop at ``rate``/s; latency from the *scheduled* send (no coordinated omission)."""
    pool = [Conn(port) for _ in range(conns)]
    await asyncio.gather(*(c.open() for c in pool))
    free: asyncio.Queue[Conn] = asyncio.Queue()
    for c in pool:
        free.put_nowait(c)
    latencies: list[float] = []
    start = time.perf_counter()

    async def one(at: float) -> None:
        c = await free.get()
        await c.post(path, next(bodies), token)
        latencies.append(time.perf_counter() - at)
        free.put_nowait(c)
    tasks = []
    for i in range(int(rate * seconds)):
        at = start + i / rate
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        tasks.append(asyncio.create_task(one(at)))
    await asyncio.gather(*tasks)
    return sorted(latencies)


# ----------------------------------------------------------------------------- payloads

def _taken() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def nhs_numbers():
    """Valid NHS numbers, all different (realistic: a batch holds many residents)."""
    n = 100_000_000
    while True:
        n += 1
        nine = f"{n:09d}"
        check = 11 - sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            yield nine + str(check % 11)


def native_sets():
    taken, n, residents = _taken(), 0, nhs_numbers()
    while True:
        n += 1
        yield {"nhs_number": next(residents), "site_id": HOME, "taken_at": taken,
               "respiration_rate": 18, "spo2": 96, "on_oxygen": False, "systolic_bp": 120,
               "pulse": 60 + n % 40, "consciousness": "A", "temperature": "36.8",
               "platform_set_id": f"{uuid.uuid4()}"}


def singles():
    for s in native_sets():
        yield json.dumps(s).encode()


def batches(size: int = 1000):
    sets = native_sets()
    while True:
        yield json.dumps({"items": [next(sets) for _ in range(size)]}).encode()


def bundles(sets: int = 40):
    taken, residents = _taken(), nhs_numbers()
    codes = [("9279-1", 18, "/min"), ("2708-6", 96, "%"), ("8867-4", 72, "/min"),
             ("8480-6", 120, "mm[Hg]"), ("8310-5", 36.8, "Cel")]
    while True:
        entries = []
        for _ in range(sets):
            ident = {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": next(residents)}
            base = {"resourceType": "Observation", "status": "final",
                    "subject": {"identifier": ident}, "effectiveDateTime": taken,
                    "performer": [{"identifier": {"system": "https://www.cqc.org.uk/location",
                                                  "value": HOME}}]}
            tag = uuid.uuid4().hex
            for i, (code, value, unit) in enumerate(codes):
                entries.append({**base, "identifier": [{"value": f"{tag}-{i}"}],
                                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                                "valueQuantity": {"value": value, "code": unit}})
            for i, code in ((5, "248234008"), (6, None)):
                extra = ({"code": {"coding": [{"system": "http://snomed.info/sct",
                                               "code": "1104441000000107"}]},
                          "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                               "code": code}]}} if code else
                         {"code": {"coding": [{"system": "http://snomed.info/sct",
                                               "code": "722742002"}]}})
                entries.append({**base, "identifier": [{"value": f"{tag}-{i}"}], **extra})
        yield json.dumps({"resourceType": "Bundle", "type": "batch",
                          "entry": [{"resource": e} for e in entries]}).encode()


# ----------------------------------------------------------------------------- main

async def _wait_up(port: int) -> None:
    for _ in range(300):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server process so far (stable on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready_made(gen, n: int):
    """``n`` bodies encoded before the clock starts (the client shares the cores), then more."""
    made = [next(gen) for _ in range(n)]
    yield from made
    yield from gen


async def run(seconds: float, pids: dict[str, int]) -> None:
    token = TokenService(SECRET).issue("bench", Role.PLATFORM, sites=[HOME], ttl_seconds=86400)
    rows = []
    for kind in ("bare", "ingest"):
        port, pid = PORTS[kind], pids[kind]
        await _wait_up(port)
        await saturate(port, "/observation-sets", singles(), token, 1.0)  # warm up
        cpu = cpu_seconds(pid)
        n, dt, err = await saturate(port, "/observation-sets", ready_made(singles(), 30_000),
                                    token, seconds)
        single_cpu, cpu = (cpu_seconds(pid) - cpu) / max(n, 1), cpu_seconds(pid)
        lat = await paced(port, "/observation-sets", singles(), token, 1000, seconds)
        p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
        cpu = cpu_seconds(pid)
        b, bdt, berr = await saturate(port, "/observation-sets/batch",
                                      ready_made(batches(), 60), token, seconds, conns=2)
        batch_cpu, cpu = (cpu_seconds(pid) - cpu) / max(b * 1000, 1), cpu_seconds(pid)
        f, fdt, ferr = await saturate(port, "/fhir", ready_made(bundles(), 60), token, seconds,
                                      conns=2)
        fhir_cpu = (cpu_seconds(pid) - cpu) / max(f * 280, 1)
        rows.append((kind, n / dt, p50, p99, b * 1000 / bdt, f * 280 / fdt, err + berr + ferr,
                     single_cpu, batch_cpu, fhir_cpu))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':8} {'single sets/s':>14} {'p50 ms@1k/s':>12} {'p99 ms@1k/s':>12} "
          f"{'batch sets/s':>13} {'fhir obs/s':>11} {'errors':>7}")
    for kind, single, p50, p99, batch, fhir, errors, *_ in rows:
        print(f"{kind:8} {single:14,.0f} {p50:12.1f} {p99:12.1f} {batch:13,.0f} {fhir:11,.0f} "
              f"{errors:7}")
    print("server CPU (user+sys, relay included) per unit, microseconds:")
    print(f"{'':8} {'per single set':>14} {'per batch set':>14} {'per fhir obs':>13}")
    for kind, *_, s_cpu, b_cpu, f_cpu in rows:
        print(f"{kind:8} {s_cpu * 1e6:14,.0f} {b_cpu * 1e6:14,.0f} {f_cpu * 1e6:13,.0f}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "serve":
        serve(sys.argv[2])
        return
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    from tests.infra.postgres import start_postgres

    pg = start_postgres()
    servers = [_start("bare", None), _start("ingest", pg.create_database())]
    try:
        asyncio.run(run(seconds, {"bare": servers[0].pid, "ingest": servers[1].pid}))
    finally:
        for p in servers:
            p.terminate()
            p.wait(timeout=20)
        pg.stop()


if __name__ == "__main__":
    main()
