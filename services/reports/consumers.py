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
from datetime import date

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


async def apply_sites(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """Keep the register copy (newest revision wins) and count registrations per ICB."""
    if not envelopes:
        return
    newest: dict[str, dict] = {}
    for envelope in envelopes:
        d = envelope.data
        if d["site_id"] not in newest or d["revision"] > newest[d["site_id"]]["revision"]:
            newest[d["site_id"]] = d
    rows = [{k: _date(d.get(k)) if k.endswith("_on") else d[k] for k in SITE_COLUMNS}
            for d in newest.values()]
    await insert_rows(session, SITE, rows, newer=(["site_id"], "revision"))
    registered = Counter(e.data["icb_code"] for e in envelopes
                         if e.type == SiteRegistered.TYPE)
    await insert_rows(session, REG, [{"icb_code": icb, "sites_registered": n}
                                     for icb, n in sorted(registered.items())],
                      add=(["icb_code"], ["sites_registered"]))   # one statement, any ICBs


def _date(value: str | date | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


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
        sites = [e for e, _ in items if e.type in SITE_TYPES]
        if sites:
            await activity.lock_register(session)
            await apply_sites(session, sites)
            await activity.follow_register(session, {e.data["site_id"] for e in sites})
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
