"""``mandet rebuild-reports``: rebuild the views, with a progress bar, then swap them in.

``--from history`` (default, any deployment): re-derive every fact from reports' own copy of
the events, in one transaction, so readers switch from the old facts to the new at commit.
``--from bus``: replay every topic from the earliest retained record (Kafka; a reader, no
consumer group) up to where it ended when the replay began, into a fresh database (PostgreSQL:
``--workers`` forked processes share the partitions, one per CPU by default), derive the
facts there, then swap: ``--swap`` moves a SQLite file over the live one, or renames the
live PostgreSQL database aside and the rebuilt one into its name (one server; the reports
processes stopped for the swap); otherwise point ``REPORTS_DATABASE_URL`` at the new one.
Stop the reports worker before the rebuild starts (deploy/README.md says why).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from tqdm import tqdm

from services.reports import rebuild
from services.reports.bootstrap import bootstrap
from services.reports.facts import Horizon
from shared.db import Database
from shared.dialect import is_sqlite
from shared.migrations import upgrade
from shared.runtime import make_bus


def run(settings, *, source: str, into: str | None = None, swap: bool = False,  # noqa: ANN001
        workers: int | None = None) -> str:
    """Run a rebuild; returns a one-line summary."""
    return asyncio.run(_from_history(settings) if source == "history"
                       else _from_bus(settings, into, swap, workers))


async def _from_history(settings) -> str:  # noqa: ANN001
    runtime = bootstrap(settings)
    await upgrade(runtime.db, runtime.migrations)
    started = time.perf_counter()
    with tqdm(total=1, desc="deriving facts", unit="pass") as bar:
        facts = await rebuild.rebuild_from_history(runtime.db, _horizon(settings))
        bar.update(1)
    await runtime.db.dispose()
    return f"rebuilt {facts} facts from reports' history in {time.perf_counter() - started:.1f} s"


async def _from_bus(settings, into: str | None, swap: bool,  # noqa: ANN001
                    workers: int | None) -> str:
    if settings.bus != "kafka":
        raise SystemExit("--from bus needs MANDET_BUS=kafka (the memory bus keeps no history)")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = into or f"sqlite+aiosqlite:///{settings.data_dir / f'reports.rebuild-{stamp}.db'}"
    db = Database(target)
    await upgrade(db, bootstrap(settings).migrations)
    bus = make_bus(settings, client_id="mandet-reports-rebuild")
    await bus.start()
    started = time.perf_counter()
    try:
        with tqdm(desc="replaying events", unit="event") as bar:
            def total(messages: int) -> None:
                bar.total = messages
                bar.refresh()

            applied, skipped = await rebuild.replay_from_bus(
                bus, db, _horizon(settings), workers=workers, progress=bar.update, total=total)
    finally:
        await bus.stop()
        await db.dispose()
    rate = applied / max(time.perf_counter() - started, 1e-9)
    summary = f"replayed {applied} events ({skipped} unreadable) at {rate:,.0f}/s into {target}"
    return summary + "; " + await _swap(settings, target, swap)


async def _swap(settings, target: str, swap: bool) -> str:  # noqa: ANN001
    live = settings.database_url_for("reports")
    if not swap:
        return f"to use it: REPORTS_DATABASE_URL={target}"
    if is_sqlite(live) and is_sqlite(target):
        return _swap_files(live, target)
    if is_sqlite(live) or is_sqlite(target):
        raise SystemExit("--swap needs the rebuild and the live database on one engine: two "
                         "SQLite files, or two databases of one PostgreSQL server")
    return await _swap_postgres(live, target)


def _swap_files(live: str, target: str) -> str:
    """Move the rebuilt SQLite file over the live one (the service stopped)."""
    live_path, new_path = Path(live.split(":///", 1)[1]), Path(target.split(":///", 1)[1])
    for suffix in ("-wal", "-shm"):
        Path(f"{live_path}{suffix}").unlink(missing_ok=True)
    os.replace(new_path, live_path)
    return f"swapped into {live_path}"


SETTLE_CHECKS = 30   # 0.1 s apart: how long the swap waits for sessions to end


async def _swap_postgres(live: str, target: str) -> str:
    """Rename the live database aside (``<name>_before_<UTC time>``, kept) and the rebuilt one
    to the live one's name, so every process configured with the live URL opens the rebuilt
    views when it next connects. PostgreSQL renames a database only while nobody is
    connected to it: with the reports processes stopped, as for the SQLite swap (their
    connections would otherwise be cut mid-request). Refused, with who is connected, if
    anyone is. Both renames are one transaction (through the server's ``postgres``
    database): the live name never goes missing."""
    import asyncpg

    old, new = make_url(live), make_url(target)
    if (old.host, old.port, old.username) != (new.host, new.port, new.username) \
            or old.database == new.database:
        raise SystemExit("--swap renames databases of one PostgreSQL server: --into must name "
                         "another database on the live one's server, as the same user")
    # PostgreSQL cuts names at 63 bytes: cut here, so the summary names what exists.
    aside = f"{old.database[:40]}_before_{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    admin = old.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        for _ in range(SETTLE_CHECKS):   # the rebuild's own sessions end a moment after it
            connected = await conn.fetch(
                "SELECT datname, coalesce(nullif(application_name, ''), 'unnamed') AS app, "
                "count(*) AS n FROM pg_stat_activity WHERE datname = ANY($1::text[]) "
                "AND pid <> pg_backend_pid() GROUP BY 1, 2 ORDER BY 1, 2",
                [old.database, new.database])
            if not connected:
                break
            await asyncio.sleep(0.1)
        if connected:
            who = ", ".join(f"{r['n']} to {r['datname']} ({r['app']})" for r in connected)
            raise SystemExit(f"not swapped: stop the reports processes first (connected: "
                             f"{who}); the rebuild stays in {new.database}")
        try:
            async with conn.transaction():   # both renames or neither
                await conn.execute(f"ALTER DATABASE {_quoted(old.database)} "
                                   f"RENAME TO {_quoted(aside)}")
                await conn.execute(f"ALTER DATABASE {_quoted(new.database)} "
                                   f"RENAME TO {_quoted(old.database)}")
        except asyncpg.ObjectInUseError as exc:   # someone connected since the check
            raise SystemExit(f"not swapped: {exc}; stop the reports processes first; the "
                             f"rebuild stays in {new.database}") from exc
    finally:
        await conn.close()
    return f"swapped into {old.database} (the views before kept as {aside})"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _horizon(settings) -> Horizon:  # noqa: ANN001
    return Horizon.of(settings.first_quarter)
