"""PostgreSQL, the broker and service processes, started the way the tests start them.

PostgreSQL and the Kafka-protocol broker come from ``tests/infra`` (so TEST_DATABASE_URL and
TEST_KAFKA_BOOTSTRAP are honoured). Each service runs on the scale path as separate processes:
``mandet serve <svc>`` (HTTP only: relay and consumers off) and ``mandet worker <svc>`` (relay
and consumers), with its own database. A sampler thread records each process's peak RSS.
``BENCH_PROFILE=ingest-api,...`` runs the named processes under pyinstrument; the text report
lands in ``bench/results/profile-<name>.txt``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from shared.auth import Role, TokenService

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RssSampler:
    """Peak resident set size per named process, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self._procs: dict[str, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def watch(self, name: str, pid: int) -> None:
        self._procs[name] = psutil.Process(pid)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, proc in list(self._procs.items()):
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[name] = max(self.peaks.get(name, 0), rss)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)  # uvicorn and workers exit cleanly; a
            try:                                   # profiler wrapping them writes its report
                self.popen.wait(timeout=20)
                return
            except subprocess.TimeoutExpired:
                pass
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class Infra:
    """Running PostgreSQL and broker, plus every process started for this run."""

    pg: object  # tests.infra.postgres.PostgresServer
    broker: object  # tests.infra.broker.Broker
    work_dir: Path
    rss: RssSampler = field(default_factory=RssSampler)
    procs: list[Proc] = field(default_factory=list)
    retired: dict[str, float] = field(default_factory=dict)   # name -> CPU s used, stopped
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    pseudonym_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    topic_prefix: str = field(default_factory=lambda: f"bench{secrets.token_hex(3)}.")

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap  # type: ignore[attr-defined]

    def database(self, template: str | None = None) -> str:
        """A fresh database (a copy of ``template``'s, given a database URL of this server)."""
        name = template.rsplit("/", 1)[1] if template else None
        return self.pg.create_database(template=name)  # type: ignore[attr-defined]

    def token(self, role: Role, sub: str = "bench", **scope: object) -> str:
        return TokenService(self.jwt_secret).issue(sub, role, ttl_seconds=6 * 3600,
                                                   **scope)  # type: ignore[arg-type]

    def service_env(self, svc: str, database_url: str, *, api: bool,
                    prefix: str | None = None) -> dict[str, str]:
        p = svc.upper()
        env = {**os.environ, f"{p}_DATABASE_URL": database_url, "MANDET_BUS": "kafka",
               "MANDET_KAFKA_BOOTSTRAP": self.bootstrap,
               "MANDET_KAFKA_ENABLE_IDEMPOTENCE": "false", "MANDET_ENV": "test",
               "MANDET_JWT_SECRET": self.jwt_secret, "INGEST_PSEUDONYM_KEY": self.pseudonym_key,
               "MANDET_KAFKA_TOPIC_PREFIX": prefix or self.topic_prefix,
               "MANDET_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
               "MANDET_DATA_DIR": str(self.work_dir / "data")}
        if api:
            env |= {f"{p}_RUN_RELAY": "false", f"{p}_RUN_CONSUMERS": "false"}
        return env

    def spawn(self, name: str, args: list[str], env: dict[str, str],
              port: int | None = None) -> Proc:
        log_path = self.work_dir / f"{name}.log"
        if name in os.environ.get("BENCH_PROFILE", "").split(","):
            out = ROOT / "bench" / "results" / f"profile-{name}.txt"
            args = ["-m", "pyinstrument", "-r", "text", "--show-all", "-o", str(out), *args]
        with log_path.open("ab") as log:
            popen = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        proc = Proc(name, popen, log_path, port)
        self.procs.append(proc)
        self.rss.watch(name, popen.pid)
        return proc

    def serve(self, svc: str, database_url: str, name: str | None = None,
              prefix: str | None = None) -> Proc:
        """``mandet serve <svc>`` on a free port; returns once /healthz answers."""
        port = free_port()
        proc = self.spawn(name or f"{svc}-api", ["-m", "mandet.cli", "serve", svc, "--host",
                                                 "127.0.0.1", "--port", str(port)],
                          self.service_env(svc, database_url, api=True, prefix=prefix), port)
        wait_http(proc, f"http://127.0.0.1:{port}/healthz")
        return proc

    def worker(self, svc: str, database_url: str, name: str | None = None,
               prefix: str | None = None) -> Proc:
        """``mandet worker <svc>``; returns once it says its relay and consumers are up."""
        proc = self.spawn(name or f"{svc}-worker", ["-m", "mandet.cli", "worker", svc],
                          self.service_env(svc, database_url, api=False, prefix=prefix))
        wait_log(proc, "mandet worker")
        return proc

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each process of the run, by name.

        PostgreSQL counts its postmaster and every backend; ``harness`` is this process (the
        load generator and the in-process baselines).
        """
        out = {p.name: _cpu(p.popen.pid) for p in self.procs}
        for name, cpu in self.retired.items():
            out[name] = out.get(name, 0.0) + cpu
        out["harness"] = _cpu(os.getpid())
        for name, pid in (("postgres", self.pg.pid), ("broker", self.broker.pid)):  # type: ignore[attr-defined]
            if pid is not None:
                out[name] = _cpu(pid, children=True)
        return out

    def retire(self, proc: Proc) -> None:
        """Stop a process its scenario no longer needs; its CPU stays in ``cpu_seconds``.

        A reports worker left running keeps fetching its topics, and on Tansu an idle fetch
        costs the broker more the more a topic holds (``tests/infra/broker.py``): after
        ``views-more`` and ``reports-freshness`` their two idle workers had the broker use
        1.6 CPU s during the NEWS2 endpoint's saturation and 3.4 during ``rebuild-activity``,
        neither of which touches the broker, on a machine with two cores.
        """
        self.retired[proc.name] = self.retired.get(proc.name, 0.0) + _cpu(proc.popen.pid)
        proc.stop()
        self.procs.remove(proc)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def _cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds of a process; with ``children``, of its live descendants too and of the
    children it has reaped (PostgreSQL's backends exit when their connection closes: without
    these, a scenario that disconnects before the end showed almost no PostgreSQL time)."""
    try:
        procs = [psutil.Process(pid)]
        if children:
            procs += procs[0].children(recursive=True)
        total = 0.0
        for i, proc in enumerate(procs):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
                if children and i == 0:
                    total += t.children_user + t.children_system
        return total
    except psutil.Error:
        return 0.0


def wait_http(proc: Proc, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url} in {timeout:.0f} s:\n{proc.log_tail()}")


def wait_log(proc: Proc, marker: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        if marker in proc.log_path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not log {marker!r} in {timeout:.0f} s:\n"
                       f"{proc.log_tail()}")


def start_infra(work_dir: Path) -> Infra:
    """PostgreSQL and the broker exactly as the test suite starts them."""
    from tests.infra.broker import start_broker
    from tests.infra.postgres import start_postgres

    pg = start_postgres()
    try:
        broker = start_broker()
    except BaseException:
        pg.stop()
        raise
    infra = Infra(pg, broker, work_dir)
    infra.rss.start()
    return infra


def stop_infra(infra: Infra) -> None:
    infra.stop()
    infra.rss.stop()
    infra.broker.stop()  # type: ignore[attr-defined]
    infra.pg.stop()  # type: ignore[attr-defined]
