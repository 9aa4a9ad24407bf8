"""Reports consumes site events into its register copy and per-ICB registrations."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.consumer import Handler
from shared.dialect import insert_ignore, upsert_if_newer
from shared.events import Envelope, Event, topics
from shared.events.sites import SiteClosed, SiteFacts, SiteRegistered, SiteUpdated
from services.reports.models import IcbRegistrations, ReportSite

REG = IcbRegistrations.__table__


async def apply_site(session: AsyncSession, _: Envelope, event: Event) -> None:
    assert isinstance(event, SiteFacts)
    dialect = session.get_bind().dialect.name
    values = {"site_id": event.site_id, "icb_code": event.icb_code,
              "psc_code": event.psc_code, "region": event.region,
              "opened_on": event.opened_on, "closed_on": event.closed_on,
              "revision": event.revision}
    await session.execute(upsert_if_newer(ReportSite.__table__, dialect, ["site_id"], values))
    if isinstance(event, SiteRegistered):
        await session.execute(insert_ignore(REG, dialect).values(icb_code=event.icb_code,
                                                                 sites_registered=0))
        await session.execute(update(REG).where(REG.c.icb_code == event.icb_code)
                              .values(sites_registered=REG.c.sites_registered + 1))


def handlers() -> dict[str, tuple[str, Handler]]:
    return {cls.TYPE: (topics.SITES, apply_site)
            for cls in (SiteRegistered, SiteUpdated, SiteClosed)}
