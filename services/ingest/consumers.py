"""Ingest consumes the register's site events to validate observations' sites locally.

A batch at a time (``shared.consumer.BatchConsumerRunner``): the newest revision of each site
in the batch, one upsert that still never lets an older revision overwrite a newer row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import KnownSite
from shared.consumer import BatchConsumerRunner, BatchHandler
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


TOPICS = {cls.TYPE: topics.SITES for cls in (SiteRegistered, SiteUpdated, SiteClosed)}


def add_to(runtime: Runtime, on_change: Callable[[str], None] | None = None
           ) -> BatchConsumerRunner:
    return runtime.add_batch_consumer(NAME, TOPICS, batch_handler(on_change))
