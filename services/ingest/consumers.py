"""Ingest consumes the register's site events to validate observations' sites locally."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.consumer import Handler
from shared.dialect import upsert_if_newer
from shared.events import Envelope, Event, topics
from shared.events.sites import SiteClosed, SiteFacts, SiteRegistered, SiteUpdated
from services.ingest.models import KnownSite


async def apply_site(session: AsyncSession, _: Envelope, event: Event) -> None:
    """Keep the newest revision of each site."""
    assert isinstance(event, SiteFacts)
    values = {"site_id": event.site_id, "icb_code": event.icb_code,
              "psc_code": event.psc_code, "closed_on": event.closed_on,
              "revision": event.revision}
    dialect = session.get_bind().dialect.name
    await session.execute(upsert_if_newer(KnownSite.__table__, dialect, ["site_id"], values))


def handlers() -> dict[str, tuple[str, Handler]]:
    return {cls.TYPE: (topics.SITES, apply_site)
            for cls in (SiteRegistered, SiteUpdated, SiteClosed)}
