"""Ingest consumes the register's site events to validate observations' sites locally."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import KnownSite
from shared.consumer import Handler
from shared.dialect import upsert_if_newer
from shared.events import Envelope, Event, topics
from shared.events.sites import SiteClosed, SiteFacts, SiteRegistered, SiteUpdated


async def apply_site(session: AsyncSession, _: Envelope, event: Event) -> None:
    """Keep the newest revision of each site."""
    if not isinstance(event, SiteFacts):
        raise TypeError(f"not a site event: {type(event).__name__}")
    values = {"site_id": event.site_id, "icb_code": event.icb_code,
              "psc_code": event.psc_code, "closed_on": event.closed_on,
              "revision": event.revision}
    dialect = session.get_bind().dialect.name
    await session.execute(upsert_if_newer(KnownSite.__table__, dialect, ["site_id"], values))


def handlers(on_change: Callable[[str], None] | None = None
             ) -> dict[str, tuple[str, Handler]]:
    """Site events -> ``apply_site``; ``on_change(site_id)`` lets a cache drop its entry."""

    async def apply(session: AsyncSession, envelope: Envelope, event: Event) -> None:
        await apply_site(session, envelope, event)
        if on_change is not None and isinstance(event, SiteFacts):
            on_change(event.site_id)

    return {cls.TYPE: (topics.SITES, apply) for cls in (SiteRegistered, SiteUpdated, SiteClosed)}
