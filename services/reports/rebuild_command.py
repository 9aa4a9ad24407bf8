"""``mandet rebuild-reports``: rebuild the views, with a progress bar, then swap them in.

``--from history`` (default, any deployment): re-derive every fact from reports' own copy of
the events, in one transaction, so readers switch from the old facts to the new at commit.
``--from bus``: replay every topic from the earliest retained record (Kafka; a reader, no
consumer group) up to where it ended when the replay began, into a fresh database (PostgreSQL:
``--workers`` forked processes share the partitions, one per CPU by default), derive the
facts there, then swap: ``--swap`` moves a SQLite file over the live one; otherwise point
``REPORTS_DATABASE_URL`` at the new one. Stop the reports worker first (deploy/README.md says
why).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

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
    return summary + "; " + _swap(settings, target, swap)


def _swap(settings, target: str, swap: bool) -> str:  # noqa: ANN001
    live = settings.database_url_for("reports")
    if not swap:
        return f"to use it: REPORTS_DATABASE_URL={target}"
    if not (is_sqlite(live) and is_sqlite(target)):
        raise SystemExit("--swap moves SQLite files only; point REPORTS_DATABASE_URL instead")
    live_path, new_path = Path(live.split(":///", 1)[1]), Path(target.split(":///", 1)[1])
    for suffix in ("-wal", "-shm"):
        Path(f"{live_path}{suffix}").unlink(missing_ok=True)
    os.replace(new_path, live_path)
    return f"swapped into {live_path}"


def _horizon(settings) -> Horizon:  # noqa: ANN001
    return Horizon.of(settings.first_quarter)
