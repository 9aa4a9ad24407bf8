"""Reports' consumer: site, stage (and activity) events into its own views.

The shared runner gives inbox dedupe, so every handler here runs once per event id. Handlers
are order-independent: the register copy keeps the newest revision, stage records are a set,
and the facts and counters are re-derived from that state once per transaction, before it
commits (``upkeep``), so a consumer batch costs a few statements beyond its inserts.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports import activity, upkeep
from services.reports.facts import Horizon
from services.reports.models import IcbRegistrations, ReportSite
from shared.consumer import Handler
from shared.dialect import insert_ignore, upsert_if_newer
from shared.events import Envelope, Event, topics
from shared.events.sites import SiteClosed, SiteFacts, SiteRegistered, SiteUpdated
from shared.events.stages import StageChanged

REG = IcbRegistrations.__table__


async def apply_site(session: AsyncSession, _: Envelope, event: Event) -> None:
    """Keep the register copy (newest revision wins) and the per-ICB registrations."""
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


def record_stage(session: AsyncSession, envelope: Envelope, event: StageChanged) -> None:
    """Add a StageChanged to the site's stage history (a set keyed by event id).

    The row is written in bulk with the transaction's other records, just before commit.
    """
    upkeep.add_record(session, {
        "event_id": str(envelope.id), "site_id": event.site_id, "psc_code": event.psc_code,
        "programme": event.programme, "tool": event.to_tool, "stage": event.to_stage,
        "applies_from": event.applies_from, "reported_at": event.reported_at})


def handlers(horizon: Horizon) -> dict[str, tuple[str, Handler]]:
    """Event type -> (topic, handler) for the "reports.views" consumer.

    Handlers write the register and the history, then mark what to re-derive; ``upkeep``
    re-derives it once per transaction, before commit.
    """

    async def on_site(session: AsyncSession, envelope: Envelope, event: Event) -> None:
        """A register change re-derives every quarter of that site (closure, move, opening)."""
        assert isinstance(event, SiteFacts)
        await apply_site(session, envelope, event)
        upkeep.mark(session, horizon, event.site_id, None)
        upkeep.remember(session, envelope)

    async def on_stage(session: AsyncSession, envelope: Envelope, event: Event) -> None:
        """A stage (late or not) re-derives its site's series for that programme."""
        assert isinstance(event, StageChanged)
        record_stage(session, envelope, event)
        upkeep.mark(session, horizon, event.site_id, event.programme)
        upkeep.remember(session, envelope)

    async def remember(session: AsyncSession, envelope: Envelope) -> None:
        upkeep.remember(session, envelope)

    routes: dict[str, tuple[str, Handler]] = {
        cls.TYPE: (topics.SITES, on_site) for cls in (SiteRegistered, SiteUpdated, SiteClosed)}
    routes[StageChanged.TYPE] = (topics.STAGES, on_stage)
    routes.update(activity.handlers(remember))
    return routes
