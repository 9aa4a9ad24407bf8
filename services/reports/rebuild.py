"""Rebuild: replay an event history into (fresh) tables, then derive every fact at once.

The incremental consumer and the rebuild share the register and history writers but not the
fact maintenance: the rebuild recomputes every series over the whole horizon in one pass,
which is both the fast path for a replay and the reference the property test compares the
incremental views against. Events are applied in a canonical order (sites, then stages, then
activity) with the same inbox, so a rebuilt database can keep consuming where it left off.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
from operator import itemgetter

from sqlalchemy import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports import activity, consumers, facts
from services.reports.domain.counts import totals
from services.reports.domain.stages import quarter_stages
from services.reports.facts import COUNT, COUNT_KEY, FACT, RECORD, SITE, Horizon
from services.reports.models import IcbRegistrations
from shared.bus.base import Bus, Consumer, Message
from shared.db import Database
from shared.dialect import copy_rows, in_values
from shared.events import Envelope, UnknownEvent, decode, parse, topics
from shared.events.stages import StageChanged
from shared.inbox import INBOX
from shared.outbox import utcnow

CONSUMER = consumers.NAME   # the live consumer's inbox key
SITE_TYPES = consumers.SITE_TYPES
REG = IcbRegistrations.__table__
LOOKUP = 10_000   # ids per inbox lookup
INBOX_COLUMNS = ("consumer", "event_id", "processed_at")
RECORD_COLUMNS = ("event_id", "site_id", "psc_code", "programme", "tool", "stage",
                  "applies_from", "reported_at")
FACT_COLUMNS = ("site_id", "programme", "qn", "tool", "stage", "icb_code", "psc_code", "region")


def canonical(envelopes: Iterable[Envelope]) -> list[Envelope]:
    """Sites first (by revision), then stages, then activity; ties by event id."""
    def key(e: Envelope) -> tuple:
        rank = {"SiteRegistered": 0, "SiteUpdated": 0, "SiteClosed": 0, "StageChanged": 1}
        return (rank.get(e.type, 2), e.data.get("revision", 0), str(e.id))
    return sorted(envelopes, key=key)


async def replay(session: AsyncSession, envelopes: Iterable[Envelope], horizon: Horizon,
                 progress: Callable[[int], None] | None = None) -> int:
    """Apply a chunk of events in bulk, each once (through the inbox), without fact upkeep.

    Same effects as the live handlers: register rows keep the newest revision, stage records
    are a set, activity counters add. Returns how many events were new.
    """
    envelopes = list(envelopes)
    fresh = await _first_times(session, envelopes)
    by_type: dict[str, list[Envelope]] = defaultdict(list)
    for envelope in fresh:
        by_type["site" if envelope.type in SITE_TYPES else envelope.type].append(envelope)
    sites = by_type.pop("site", [])
    await consumers.apply_sites(session, sites)
    await _insert_records(session, by_type.pop(StageChanged.TYPE, []))
    await activity.add_many(session, [parse(e) for items in by_type.values() for e in items])
    if fresh:
        dialect = session.get_bind().dialect.name
        stamp = {"views_stamp": facts.new_stamp()} if sites else {}
        await session.execute(facts.set_freshness(dialect, **facts.last_event(fresh[-1]),
                                                  **stamp))
    if progress:
        progress(len(envelopes))
    return len(fresh)


async def _first_times(session: AsyncSession, envelopes: list[Envelope]) -> list[Envelope]:
    """Each envelope not applied before, once, recorded in the live consumer's inbox (so a
    rebuilt database keeps consuming where it left off).

    A replay fills a database no live consumer writes, so rather than ``first_time_many``'s
    ``ON CONFLICT DO NOTHING RETURNING`` (every id sent as JSON and sent back) it looks up the
    few known ids and appends the new rows (COPY on PostgreSQL). Were another writer to add
    one of these ids meanwhile, the append would fail the transaction on the inbox key:
    nothing is ever applied twice.
    """
    first: dict = {}
    for e in envelopes:
        first.setdefault(e.id, e)
    if not first:
        return []
    dialect, ids, known = session.get_bind().dialect.name, list(first), set()
    for i in range(0, len(ids), LOOKUP):   # SQLite binds each id (default cap 32,766)
        known.update((await session.execute(select(INBOX.c.event_id).where(
            INBOX.c.consumer == CONSUMER,
            in_values(INBOX.c.event_id, ids[i:i + LOOKUP], dialect)))).scalars())
    fresh = [e for i, e in first.items() if i not in known] if known else list(first.values())
    now = utcnow()
    await copy_rows(session, INBOX, INBOX_COLUMNS, [(CONSUMER, e.id, now) for e in fresh])
    return fresh


async def _insert_records(session: AsyncSession, envelopes: list[Envelope]) -> None:
    """Append the stage records of events new to the inbox.

    Every writer of ``reports_stage_record`` writes the event's inbox row (this consumer's) in
    the same transaction, so an event new to the inbox has no record yet: a plain bulk append
    (COPY on PostgreSQL), no conflict handling. A duplicate would fail the transaction loudly.
    """
    rows = []
    for envelope in envelopes:
        e = parse(envelope)
        assert isinstance(e, StageChanged)
        rows.append((str(envelope.id), e.site_id, e.psc_code, e.programme, e.to_tool,
                     e.to_stage, e.applies_from, e.reported_at))
    await copy_rows(session, RECORD, RECORD_COLUMNS, rows)


async def derive_all(session: AsyncSession, horizon: Horizon) -> int:
    """Replace every fact with a fresh derivation over the whole horizon; returns fact count."""
    last = horizon.current_qn()
    await session.execute(delete(FACT))
    dialect = session.get_bind().dialect.name
    await session.execute(facts.set_freshness(dialect, horizon_qn=last))
    sites = {r.site_id: r for r in (await session.execute(select(SITE))).all()}
    rows = await session.execute(
        select(RECORD.c.site_id, RECORD.c.programme, RECORD.c.applies_from,
               RECORD.c.reported_at, RECORD.c.tool, RECORD.c.stage, RECORD.c.event_id)
        .order_by(RECORD.c.site_id, RECORD.c.programme))   # the facts' key order: appends
    out = []
    by_area: dict[tuple[str, str, str, str], list] = defaultdict(list)
    for (site_id, programme), history in groupby(rows, key=itemgetter(0, 1)):
        site = sites.get(site_id)
        if site is None:
            continue
        area = (site.icb_code, site.psc_code, site.region)
        stages = quarter_stages(facts.points(r[2:] for r in history), site.opened_on,
                                site.closed_on, horizon.first_qn, last)
        out.extend((site_id, programme, *f, *area) for f in stages)
        by_area[(programme, *area)].extend(stages)
    await copy_rows(session, FACT, FACT_COLUMNS, out)
    await session.execute(delete(COUNT))
    await copy_rows(session, COUNT, [*COUNT_KEY, "sites"], totals(by_area))
    await session.execute(facts.set_freshness(dialect, views_stamp=facts.new_stamp()))
    return len(out)


async def rebuild_from_history(db: Database, horizon: Horizon) -> int:
    """Re-derive every fact from reports' own copy of the events (register + stage history).

    One transaction: readers keep the old facts until it commits, so the swap is atomic.
    """
    async with db.transaction() as session:
        return await derive_all(session, horizon)


async def replay_from_bus(bus: Bus, db: Database, horizon: Horizon, *, group: str,
                          batch_size: int = 2000,
                          progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Replay every topic from the beginning into `db` (fresh), then derive the facts.

    Returns (events applied, messages skipped as unreadable). A fresh consumer group starts at
    the earliest retained record; the replay ends when the group has no lag left.
    """
    consumer = bus.consumer(group, list(topics.ALL_TOPICS))
    applied = skipped = idle = 0
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(max_records=batch_size, timeout=0.5)
            if not batch:
                idle += 1
                if idle >= 2 and await _caught_up(consumer):
                    break
                continue
            idle = 0
            envelopes, bad = _readable(batch)
            skipped += bad
            async with db.transaction() as session:
                applied += await replay(session, envelopes, horizon)
            await consumer.commit(batch)
            if progress:
                progress(len(batch))
    finally:
        await consumer.stop()
    await rebuild_from_history(db, horizon)
    return applied, skipped


async def _caught_up(consumer: Consumer) -> bool:
    # Kafka: no lag means nothing until partitions are assigned (the first join takes seconds).
    assigned = getattr(consumer, "assigned", None)
    if assigned is not None and not await assigned():
        return False
    return await consumer.lag() == 0


def _readable(batch: Sequence[Message]) -> tuple[list[Envelope], int]:
    out, bad = [], 0
    for message in batch:
        try:
            envelope = decode(message.value)
            parse(envelope)
        except (UnknownEvent, ValueError):
            bad += 1   # the live consumer dead-letters these; a rebuild reports the count
            continue
        if envelope.type in KNOWN:
            out.append(envelope)
    return out, bad


KNOWN = {*SITE_TYPES, StageChanged.TYPE, *activity.TYPES}
