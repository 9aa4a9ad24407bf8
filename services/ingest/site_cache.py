"""An in-process copy of ingest's site table for the hot path (read per request).

The process keeps a snapshot of the whole table (the national register is ~15,000 rows),
renewed in the background while requests use it, once it is older than ``REFRESH_AT`` of
``site_cache_seconds``: one cheap query first compares the table's fingerprint (row count and
sum of revisions: rows are never deleted and a row's revision only grows, so every change
moves it) with the snapshot's, and only a changed table is read again (~40 ms of CPU
nationally). A snapshot's rows count only while it is younger than ``site_cache_seconds``
(its age runs from when its check began). Whatever the snapshot lacks, or everything when it
is too old (idle a while, or renewals failing), is read from the table in the request's own
transaction and kept for ``site_cache_seconds``. Reading the sites of each flush
from the table was about a tenth of the API's CPU at saturation (the flush's one query).

Guarantees: a site registered a moment ago is seen at once (a miss reads the table). A change
to a known site is seen at most ``site_cache_seconds`` late in a process that does not run the
site consumer, and at once in one that does: the consumer calls ``invalidate``, which also keeps
a reload already under way from bringing the old row back. ``site_cache_seconds=0`` turns all
caching off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.ingest.models import KnownSite as SiteRow
from services.ingest.observations import dialect_of
from services.ingest.validation import KnownSite
from shared.db import Database
from shared.dialect import in_values

log = logging.getLogger(__name__)
_SITES = SiteRow.__table__
_COLUMNS = (_SITES.c.site_id, _SITES.c.icb_code, _SITES.c.psc_code, _SITES.c.closed_on)
REFRESH_AT = 0.75   # renew once the snapshot is this share of site_cache_seconds old
Fingerprint = tuple[int, int]   # (rows, sum of revisions)


class SiteSource(Protocol):
    async def fingerprint(self) -> Fingerprint: ...
    async def load(self) -> tuple[dict[str, KnownSite], Fingerprint]: ...


class SiteTable:
    """Ingest's site table read whole, or just its fingerprint, on a connection of its own."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def fingerprint(self) -> Fingerprint:
        async with self.db.engine.connect() as conn:
            rows, revisions = (await conn.execute(select(
                func.count(), func.coalesce(func.sum(_SITES.c.revision), 0)))).one()
            return int(rows), int(revisions)

    async def load(self) -> tuple[dict[str, KnownSite], Fingerprint]:
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(*_COLUMNS, _SITES.c.revision))).all()
        sites = {site_id: KnownSite(icb, psc, closed) for site_id, icb, psc, closed, _ in rows}
        return sites, (len(rows), sum(r[4] for r in rows))


class SiteCache:
    def __init__(self, ttl_seconds: float, source: SiteSource | None = None) -> None:
        self.ttl = ttl_seconds
        self._source = source if ttl_seconds > 0 else None
        self._entries: dict[str, tuple[float, KnownSite]] = {}
        self._snapshot: dict[str, KnownSite] = {}
        self._fingerprint: Fingerprint | None = None   # the table's when the snapshot was read
        self._snapshot_at = float("-inf")   # monotonic time its check began
        self._reload: asyncio.Task[None] | None = None
        self._dropped: set[str] = set()     # invalidated while a reload runs
        self.reloads = self.renewals = 0   # table reads; renewals (reads or confirmations)

    def invalidate(self, site_id: str) -> None:
        self._entries.pop(site_id, None)
        self._snapshot.pop(site_id, None)
        if self._reload is not None:
            self._dropped.add(site_id)

    async def get_many(self, session: AsyncSession | AsyncConnection, site_ids: Iterable[str]
                       ) -> dict[str, KnownSite]:
        """The known sites among ``site_ids`` (from memory when fresh, the rest from the db)."""
        now = time.monotonic()
        age = now - self._snapshot_at
        if self._source is not None and self._reload is None and age > self.ttl * REFRESH_AT:
            self._reload = asyncio.create_task(self._reloaded())
        snapshot = self._snapshot if age < self.ttl else {}
        entries = self._entries
        found: dict[str, KnownSite] = {}
        missing: list[str] = []
        for site_id in set(site_ids):
            site = snapshot.get(site_id)
            if site is not None:
                found[site_id] = site
                continue
            hit = entries.get(site_id)
            if hit is not None and hit[0] > now:
                found[site_id] = hit[1]
            else:
                missing.append(site_id)
        if missing:  # ONE array parameter: a batch names up to 1,000 sites, and an expanding
            # IN binds a parameter per site and is a different statement for every length
            result = await session.execute(select(*_COLUMNS).where(
                in_values(_SITES.c.site_id, missing, dialect_of(session))))
            expires = now + self.ttl
            for site_id, icb_code, psc_code, closed_on in result:
                site = found[site_id] = KnownSite(icb_code, psc_code, closed_on)
                if self.ttl > 0:
                    entries[site_id] = (expires, site)
        return found

    async def _reloaded(self) -> None:
        """Renew the snapshot: confirmed by the fingerprint, or read again."""
        assert self._source is not None
        started, self._dropped = time.monotonic(), set()
        try:
            if await self._source.fingerprint() == self._fingerprint:
                sites = self._snapshot   # unchanged since it was read (less what was dropped)
            else:
                sites, self._fingerprint = await self._source.load()
                self.reloads += 1
        except Exception:  # noqa: BLE001 - misses read the table meanwhile; retried on use
            log.warning("site snapshot renewal failed", exc_info=True)
            return
        finally:
            self._reload = None
        for site_id in self._dropped:
            sites.pop(site_id, None)
        self._snapshot, self._snapshot_at = sites, started
        self.renewals += 1

    async def close(self) -> None:
        """Cancel a reload under way (the runtime is stopping)."""
        task, self._reload = self._reload, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
