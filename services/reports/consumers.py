"""Reports' consumer: site, stage and activity events into its own views, a batch at a time.

``shared.consumer.BatchConsumerRunner`` gives inbox dedupe (each event id once) and hands over
the whole batch, so a batch costs a few statements, not a few per event. Effects are
order-independent: the register copy keeps the newest revision, stage records are a set,
activity counters add (withdrawals add negatives: ``activity``), and the facts and counters
are re-derived from that state once per transaction, before it commits (``upkeep``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports import activity, upkeep
from services.reports.facts import SITE, Horizon
from services.reports.models import IcbRegistrations
from shared.consumer import BatchConsumerRunner, BatchHandler
from shared.dialect import insert_rows
from shared.events import Envelope, Event, topics
from shared.events.sites import SiteClosed, SiteFacts, SiteRegistered, SiteUpdated
from shared.events.stages import StageChanged
from shared.runtime import Runtime

NAME = "reports.views"
REG = IcbRegistrations.__table__
SITE_TYPES = {SiteRegistered.TYPE, SiteUpdated.TYPE, SiteClosed.TYPE}
SITE_COLUMNS = ["site_id", "icb_code", "psc_code", "region", "opened_on", "closed_on",
                "revision"]


async def apply_sites(session: AsyncSession, events: Sequence[SiteFacts]) -> None:
    """Keep the register copy (newest revision wins) and count registrations per ICB."""
    if not events:
        return
    newest: dict[str, SiteFacts] = {}
    for event in events:
        if event.site_id not in newest or event.revision > newest[event.site_id].revision:
            newest[event.site_id] = event
    rows = [{k: getattr(e, k) for k in SITE_COLUMNS} for e in newest.values()]
    await insert_rows(session, SITE, rows, newer=(["site_id"], "revision"))
    registered = Counter(e.icb_code for e in events if isinstance(e, SiteRegistered))
    await insert_rows(session, REG, [{"icb_code": icb, "sites_registered": n}
                                     for icb, n in sorted(registered.items())],
                      add=(["icb_code"], ["sites_registered"]))   # one statement, any ICBs


def record_stage(session: AsyncSession, envelope: Envelope, event: StageChanged) -> None:
    """Add a StageChanged to the site's stage history (a set keyed by event id).

    The row is written in bulk with the batch's other records by ``upkeep.flush``.
    """
    upkeep.add_record(session, {
        "event_id": str(envelope.id), "site_id": event.site_id, "psc_code": event.psc_code,
        "programme": event.programme, "tool": event.to_tool, "stage": event.to_stage,
        "applies_from": event.applies_from, "reported_at": event.reported_at})


def batch_handler(horizon: Horizon) -> BatchHandler:
    """Apply a batch of new events, then let ``upkeep`` re-derive what they changed.

    A register change re-derives every quarter of that site (closure, move, opening) and
    moves its activity to its new areas; a stage (late or not) re-derives its site's series
    for that programme.
    """
    async def apply(session: AsyncSession, items: Sequence[tuple[Envelope, Event]]) -> None:
        sites = [ev for _, ev in items if isinstance(ev, SiteFacts)]
        if sites or any(isinstance(ev, StageChanged) for _, ev in items):
            await activity.lock_areas(session)   # first: the facts may change (``activity``)
        if sites:
            await apply_sites(session, sites)
            await activity.follow_register(session, {ev.site_id for ev in sites})
        for envelope, event in items:
            if isinstance(event, SiteFacts):
                upkeep.mark(session, horizon, event.site_id, None)
            elif isinstance(event, StageChanged):
                record_stage(session, envelope, event)
                upkeep.mark(session, horizon, event.site_id, event.programme)
        await activity.add_many(session, [ev for e, ev in items if e.type in activity.TYPES])
        if items:
            upkeep.remember(session, items[-1][0])
        await upkeep.flush(session)
    return apply


TOPICS = {**dict.fromkeys(SITE_TYPES, topics.SITES), StageChanged.TYPE: topics.STAGES,
          **activity.TYPES}


def add_to(runtime: Runtime, horizon: Horizon) -> BatchConsumerRunner:
    return runtime.add_batch_consumer(NAME, TOPICS, batch_handler(horizon))
