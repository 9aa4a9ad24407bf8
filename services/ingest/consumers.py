"""Ingest consumes the register's site events to validate observations' sites locally.

A batch at a time (``shared.consumer.BatchConsumerRunner``): the newest revision of each site
in the batch, one upsert that still never lets an older revision overwrite a newer row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import KnownSite
from shared.consumer import BatchConsumerRunner, BatchHandler, Handler
from shared.dialect import insert_rows
from shared.events import Envelope, Event, topics
from shared.events.sites import SiteClosed, SiteFacts, SiteRegistered, SiteUpdated
from shared.runtime import Runtime

NAME = "ingest.sites"


async def apply_sites(session: AsyncSession, events: Sequence[Event]) -> None:
    """Keep the newest revision of each site."""
    newest: dict[str, SiteFacts] = {}
    for event in events:
        if not isinstance(event, SiteFacts):
            raise TypeError(f"not a site event: {type(event).__name__}")
        if event.site_id not in newest or event.revision > newest[event.site_id].revision:
            newest[event.site_id] = event
    rows = [{"site_id": e.site_id, "icb_code": e.icb_code, "psc_code": e.psc_code,
             "closed_on": e.closed_on, "revision": e.revision}
            for _, e in sorted(newest.items())]
    if rows:
        await insert_rows(session, KnownSite.__table__, rows, newer=(["site_id"], "revision"))


def batch_handler(on_change: Callable[[str], None] | None = None) -> BatchHandler:
    """``on_change(site_id)`` lets a cache drop its entry once the batch is applied."""
    async def apply(session: AsyncSession, items: Sequence[tuple[Envelope, Event]]) -> None:
        await apply_sites(session, [event for _, event in items])
        if on_change is not None:
            for _, event in items:
                if isinstance(event, SiteFacts):
                    on_change(event.site_id)
    return apply


def handlers(on_change: Callable[[str], None] | None = None
             ) -> dict[str, tuple[str, Handler]]:
    """Site events -> the batch handler applied to a batch of one."""
    apply = batch_handler(on_change)

    async def one(session: AsyncSession, envelope: Envelope, event: Event) -> None:
        await apply(session, [(envelope, event)])

    return {cls.TYPE: (topics.SITES, one) for cls in (SiteRegistered, SiteUpdated, SiteClosed)}


def add_to(runtime: Runtime, on_change: Callable[[str], None] | None = None
           ) -> BatchConsumerRunner:
    """Register the batch consumer with the runtime, as ``runtime.add_consumer`` would."""
    s = runtime.settings
    runner = BatchConsumerRunner(runtime.db, runtime.bus, name=NAME, handlers=handlers(on_change),
                                 batch_size=s.consumer_batch_size,
                                 max_attempts=s.consumer_max_attempts,
                                 after_commit=runtime.relay.wake,
                                 batch_handler=batch_handler(on_change))
    runtime.consumers.append(runner)
    return runner
