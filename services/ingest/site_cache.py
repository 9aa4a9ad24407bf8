"""A short-lived in-process cache of ingest's site copy (the hot path reads it per request).

Only known sites are cached (a site registered a moment ago must be seen at once). The site
consumer invalidates an entry when it applies a site event in this process; a process that
does not run the consumer sees a change at most ``site_cache_seconds`` late, which is small
next to the register-to-ingest event delay itself. ``site_cache_seconds=0`` turns it off.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.ingest.models import KnownSite as SiteRow
from services.ingest.observations import dialect_of
from services.ingest.validation import KnownSite
from shared.dialect import in_values

_SITES = SiteRow.__table__
_COLUMNS = (_SITES.c.site_id, _SITES.c.icb_code, _SITES.c.psc_code, _SITES.c.closed_on)


class SiteCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, KnownSite]] = {}

    def invalidate(self, site_id: str) -> None:
        self._entries.pop(site_id, None)

    async def get_many(self, session: AsyncSession | AsyncConnection, site_ids: Iterable[str]
                       ) -> dict[str, KnownSite]:
        """The known sites among ``site_ids`` (cached ones from memory, the rest from the db)."""
        now = time.monotonic()
        entries = self._entries
        found: dict[str, KnownSite] = {}
        missing: list[str] = []
        for site_id in set(site_ids):
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
