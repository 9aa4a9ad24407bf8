"""Rebuild: replay an event history into (fresh) tables, then derive every fact at once.

The incremental consumer and the rebuild share the register and history writers but not the
fact maintenance: the rebuild recomputes every series over the whole horizon in one pass (and
the activity roll-ups, ``activity.derive``), which is both the fast path for a replay and the
reference the property test compares the incremental views against. Events are applied in a
canonical order (sites, then stages, then activity) with the same inbox, so a rebuilt
database can keep consuming where it left off.

Into fresh tables a ``Replay`` is a bulk load (see its docstring): ids deduped in memory, each
chunk prepared (validated, made into rows) while the one before is written, rows appended by
COPY, the inbox's and the records' indexes built once at the end on PostgreSQL (two tables
at once, while ``rebuild_from_history`` derives when the replay leaves them to it);
``derive_all`` streams the facts into COPY as it derives them, and handed that
replay (``derive_all(session, horizon, replay)``) takes the histories from its memory and
builds the facts' primary key once after the load. The result is the same database,
indexes included, as the chunk-by-chunk path over tables with history.
"""

from __future__ import annotations

import asyncio
import gc
import os
import zlib
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Protocol

from sqlalchemy import delete, func, select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports import activity, consumers, facts, quality
from services.reports.domain.counts import Area, Counted, counted, merged, rolled_up
from services.reports.domain.stages import quarter_stages_of
from services.reports.facts import COUNT, COUNT_KEY, FACT, RECORD, SITE, Horizon
from services.reports.models import IcbRegistrations
from shared.bus.base import Bus, Reader
from shared.db import Database
from shared.dialect import aware, copy_rows, driver_connection, in_values
from shared.events import Envelope, Event, parse, read, topics
from shared.events.stages import StageChanged
from shared.forked import run_forked
from shared.inbox import INBOX
from shared.outbox import utcnow

CONSUMER = consumers.NAME   # the live consumer's inbox key
SITE_TYPES = consumers.SITE_TYPES
REG = IcbRegistrations.__table__
LOOKUP = 10_000   # ids per inbox lookup
PART = 250   # events prepared between two turns of the event loop (``Replay._pipelined``)
INBOX_COLUMNS = ("consumer", "event_id", "processed_at")
# in the history's order (``_histories``), so a record row is its own history row
RECORD_COLUMNS = ("site_id", "programme", "applies_from", "reported_at", "tool", "stage",
                  "event_id", "psc_code")
FACT_COLUMNS = ("site_id", "programme", "qn", "tool", "stage", "icb_code", "psc_code", "region")


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Bulk work with the objects that existed before it frozen (``gc.freeze``) and young
    objects collected rarely (generation 0 at ``BULK_GEN0``), then thawed and restored.

    A replay or derivation allocates hundreds of thousands of containers that live long
    enough to reach the oldest generation and trigger full collections, each of which walks
    every object of the process (measured in the bench harness, which holds the whole
    history: about 1 CPU s a full collection, one or two a rebuild). Frozen, those objects
    are skipped; reference counting frees as before. Validating an event allocates a dozen
    containers, so at CPython's default threshold (700) the young collections ran every 170
    events or so and took about a fifth of the replay's CPU (the ``rebuild-activity``
    replay, alternated: 7.2-9.0 CPU s for 305,316 events, 6.0-7.4 at ``BULK_GEN0``); at
    that threshold they run a few times a replay, and only cyclic garbage (a transaction's
    session, a few a chunk) waits for them. Nested uses restore at the outermost exit; if
    something else froze the heap already (ingest's runtime does), the heap is left as it
    is, and the threshold raised all the same.
    """
    global _freezes, _thresholds, _froze
    if _freezes == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(max(BULK_GEN0, _thresholds[0]), *_thresholds[1:])
        _froze = not gc.get_freeze_count()
        if _froze:
            gc.freeze()
    _freezes += 1
    try:
        yield
    finally:
        _freezes -= 1
        if _freezes == 0:
            if _froze:
                gc.unfreeze()
            gc.set_threshold(*_thresholds)


BULK_GEN0 = 100_000
_freezes, _froze, _thresholds = 0, False, gc.get_threshold()


def canonical(envelopes: Iterable[Envelope]) -> list[Envelope]:
    """Sites first (by revision), then stages, then activity; ties by event id (so a
    withdrawal may come before the event it withdraws: counters add, see ``activity``)."""
    def key(e: Envelope) -> tuple:
        rank = {"SiteRegistered": 0, "SiteUpdated": 0, "SiteClosed": 0, "StageChanged": 1}
        return (rank.get(e.type, 2), e.data.get("revision", 0), str(e.id))
    return sorted(envelopes, key=key)


@dataclass
class Chunk:
    """A chunk of events made ready to write: what is new, and its rows."""

    given: int                     # envelopes in the chunk, duplicates and known ids included
    last: Envelope | None          # the last event not applied before (freshness)
    sites: list[Event]             # register events (SiteFacts)
    inbox: list[tuple]             # INBOX_COLUMNS, a row per new event
    records: list[tuple]           # RECORD_COLUMNS
    tallied: activity.Tally        # the activity events' tally
    made: activity.Bulk | None = None   # its rows (``ready``)

    def __iadd__(self, later: Chunk) -> Chunk:
        """This chunk followed by a later part of it (prepared on its own, tallied into
        this chunk's tally)."""
        assert later.tallied is self.tallied and self.made is None
        self.given += later.given
        self.last = later.last or self.last
        self.inbox += later.inbox
        self.sites += later.sites
        self.records += later.records
        return self

    def ready(self) -> activity.Bulk:
        """The activity rows to write, made once."""
        if self.made is None:
            self.made = activity.bulk(self.tallied)
        return self.made


class Replay:
    """One replay of a history, chunk by chunk, each chunk in a transaction of its own.

    Same effects as the live handlers: register rows keep the newest revision, stage records
    are a set, activity counters add; every event applied is recorded in the live consumer's
    inbox (so a rebuilt database keeps consuming where it left off), no fact upkeep and no
    activity roll-ups (``derive_all`` derives every fact and roll-up at the end).

    Fresh tables (the first chunk finds no inbox row of this consumer and no stage record):
    only this replay writes them, so the ids it applied are the inbox, and it dedupes in
    memory instead of looking ids up. Otherwise each chunk looks up the ids already in the
    inbox. Either way the inbox rows are appended (COPY on PostgreSQL) and its primary key
    refuses a duplicate another writer may have added meanwhile, so nothing is applied
    twice: at once over tables with history, and at the end of a bulk load into fresh
    tables on PostgreSQL, whose keys are dropped for the load and rebuilt then, failing the
    replay (``_defer_indexes``). A chunk that failed leaves the replay unusable (its ids are
    remembered without having been committed). On fresh tables ``apply_all`` prepares each
    chunk while the previous one is written, committing them in order (``_pipelined``), and
    keeps the stage records it wrote for ``derive_all`` (``history``).
    """

    def __init__(self, horizon: Horizon) -> None:
        self.horizon = horizon
        self.applied: set[int] | None = None   # ids (as ints) applied, when tables were fresh
        self.records: list[tuple] | None = None   # and the stage records written (history)
        self.unreadable = 0   # events skipped because ``parse`` refuses them
        self.started = self.failed = False
        self.unbuilt: list[tuple[str, str]] = []   # indexes left to ``rebuild_from_history``

    @classmethod
    def into_fresh(cls, horizon: Horizon) -> Replay:
        """A replay into tables its caller found fresh and whose indexes it deferred already
        (``_replay_split``: once, for all its workers); nothing is checked again."""
        replay = cls(horizon)
        replay.applied, replay.records, replay.started = set(), [], True
        return replay

    async def apply(self, session: AsyncSession, envelopes: Iterable[Envelope],
                    progress: Callable[[int], None] | None = None) -> int:
        """Apply a chunk in the caller's transaction, each event once; returns how many events
        were new."""
        self._check()
        envelopes = list(envelopes)
        try:
            with frozen_heap():
                if not self.started:
                    await self._start(session)
                known = (self.applied if self.applied is not None
                         else await _in_inbox(session, envelopes))
                return await self._write(session, self._prepare(envelopes, known), progress)
        except BaseException:
            self.failed = True
            raise

    async def apply_all(self, db: Database, chunks: Chunks,
                        progress: Callable[[int], None] | None = None,
                        stop: Callable[[], bool] | None = None, *,
                        indexes_now: bool = True) -> int:
        """Apply chunks, each in a transaction of its own; returns how many events were new.

        ``chunks`` may be an async iterable (the bus, read as it is replayed). ``stop`` is
        asked before each chunk (a time budget). On fresh tables the inbox's and the
        records' indexes are built once, after the last chunk (``_defer_indexes``); with
        ``indexes_now=False``, once every chunk committed, they are left to
        ``rebuild_from_history``, which builds them while it derives the facts (until then
        the database has no keys, and ``Replay`` and the live consumer refuse it). A failed
        replay builds them at once either way.
        """
        self._check()
        chunks = _each(chunks)
        try:
            with frozen_heap():
                if not self.started:
                    async with db.transaction() as session:
                        await self._start(session)
                if self.applied is None:
                    return await self._chunks(db, chunks, progress, stop)
                async with db.transaction() as session:
                    restore = await _defer_indexes(session)
                try:
                    applied = await self._chunks(db, chunks, progress, stop)
                except BaseException:
                    await _restore_indexes(db, restore)
                    raise
                if indexes_now:
                    await _restore_indexes(db, restore)
                else:
                    self.unbuilt = restore
                return applied
        except BaseException:
            self.failed = True
            raise

    async def _chunks(self, db: Database, chunks: AsyncIterator[Sequence[Envelope]],
                      progress: Callable[[int], None] | None,
                      stop: Callable[[], bool] | None) -> int:
        """Each chunk in a transaction of its own (``apply``), until ``stop`` says so."""
        if self.applied is not None:
            return await self._pipelined(db, chunks, progress, stop)
        applied = 0
        async for envelopes in chunks:
            if stop and stop():
                break
            async with db.transaction() as session:
                applied += await self.apply(session, envelopes, progress)
        return applied

    async def _pipelined(self, db: Database, chunks: AsyncIterator[Sequence[Envelope]],
                         progress: Callable[[int], None] | None,
                         stop: Callable[[], bool] | None) -> int:
        """Fresh tables: the next chunk is prepared while the last one's transaction is in
        flight, so the database stores one chunk (on another core) while this process
        validates the next. Preparing needs nothing from the database (ids are deduped in
        memory); a chunk is written only once the one before it committed, so chunks commit
        in order, and when one fails (written or prepared) exactly those before it are
        committed. The preparation yields to the event loop every ``PART`` events, so the
        writer's statements go out meanwhile."""
        applied, writing = 0, None
        try:
            async for envelopes in chunks:
                if stop and stop():
                    break
                chunk = await self._prepare_in_parts(list(envelopes))
                if writing is not None:
                    applied += await writing
                writing = asyncio.ensure_future(self._commit(db, chunk, progress))
            if writing is not None:
                applied += await writing
            return applied
        except BaseException:
            if writing is not None and not writing.done():
                with suppress(Exception):   # the chunk before the failure ends as it may
                    await writing
            raise

    async def _prepare_in_parts(self, envelopes: list[Envelope]) -> Chunk:
        assert self.applied is not None
        chunk = self._prepare(envelopes[:PART], self.applied)
        for i in range(PART, len(envelopes), PART):
            await asyncio.sleep(0)
            chunk += self._prepare(envelopes[i:i + PART], self.applied, chunk.tallied)
        await asyncio.sleep(0)
        chunk.ready()
        return chunk

    async def _commit(self, db: Database, chunk: Chunk,
                      progress: Callable[[int], None] | None) -> int:
        async with db.transaction() as session:
            return await self._write(session, chunk, progress)

    def _check(self) -> None:
        if self.failed:
            raise RuntimeError("a chunk of this replay failed: start a new replay")

    async def _start(self, session: AsyncSession) -> None:
        if not await _keys_in_place(session):
            raise RuntimeError(UNFINISHED)
        fresh = await _fresh(session)
        self.applied, self.records = (set(), []) if fresh else (None, None)
        self.started = True

    async def build_indexes(self, db: Database) -> None:
        """Build the indexes ``apply_all(..., indexes_now=False)`` left (no-op if none)."""
        restore, self.unbuilt = self.unbuilt, []
        await _restore_indexes(db, restore)

    def history(self) -> list[tuple] | None:
        """Every stage record this replay wrote into fresh tables (RECORD_COLUMNS rows, whose
        first seven are ``_histories``' columns), or None when it cannot tell: tables with
        history, a failed chunk. Equal to the table's records once every chunk committed and
        the table holds as many rows (``derive_all`` checks): the replay wrote each id once."""
        return None if self.failed else self.records

    def _prepare(self, envelopes: list[Envelope], known: set[int],
                 into: activity.Tally | None = None) -> Chunk:
        """Dedupe (ids in ``known`` are skipped; on fresh tables this chunk's are added to it),
        validate and build rows, in one pass, and tally the activity (into ``into``, when
        given). Reads nothing from the database, so it can run while the chunk before is
        written (``_pipelined``: building the rows there, the tally above all, left this
        process idle while the database worked). An event
        ``parse`` refuses is counted in ``unreadable`` and skipped, id not remembered, as
        the live consumer dead-letters it without an inbox row."""
        validate = STAGE_VALIDATOR   # parse's own validation, minus two calls per event
        stage_event = StageChanged
        seen: set[int] = set()
        sites: list[Event] = []
        records: list[tuple] = []
        other: list[Event] = []
        inbox: list[tuple] = []   # a row per event not applied before, once, in chunk order
        last: Envelope | None = None
        now = utcnow()   # the inbox's processed_at: when prepared, a moment before written
        for envelope in envelopes:
            key = envelope.id.int
            if key in known or key in seen:
                continue
            kind = envelope.type
            data = envelope.data   # the event itself when ``read`` (the bus), else a dict
            try:
                event = ((data if type(data) is stage_event else validate(data))
                         if kind == STAGE and envelope.schemaversion <= VERSION
                         else parse(envelope))
            except ValueError:   # a pydantic ValidationError, an UnknownEvent
                self.unreadable += 1
                continue
            if kind not in KNOWN:
                continue   # another service's event on these topics: not reports' to apply
            seen.add(key)
            last = envelope
            inbox.append((CONSUMER, envelope.id, now))
            if kind == STAGE:
                records.append((event.site_id, event.programme, event.applies_from,
                                event.reported_at, event.to_tool, event.to_stage,
                                str(envelope.id), event.psc_code))
            elif kind in SITE_TYPES:
                sites.append(event)
            else:
                other.append(event)
        if known is self.applied:
            known |= seen
        return Chunk(len(envelopes), last, sites, inbox, records, activity.tally(other, into))

    async def _write(self, session: AsyncSession, chunk: Chunk,
                     progress: Callable[[int], None] | None) -> int:
        await copy_rows(session, INBOX, INBOX_COLUMNS, chunk.inbox)
        await consumers.apply_sites(session, chunk.sites)
        await copy_rows(session, RECORD, RECORD_COLUMNS, chunk.records)
        if self.records is not None:
            self.records.extend(chunk.records)
        await activity.add_bulk(session, chunk.ready())
        if chunk.last is not None:
            dialect = session.get_bind().dialect.name
            stamp = {"views_stamp": facts.new_stamp()} if chunk.sites else {}
            await session.execute(facts.set_freshness(dialect, **facts.last_event(chunk.last),
                                                      **stamp))
        if progress:
            progress(chunk.given)
        return len(chunk.inbox)


STAGE, VERSION = StageChanged.TYPE, StageChanged.VERSION
UNFINISHED = ("the inbox or the stage records have no primary key: a replay into this "
              "database did not finish; replay into a fresh one")
STAGE_VALIDATOR = StageChanged.__pydantic_validator__.validate_python


async def replay(session: AsyncSession, envelopes: Iterable[Envelope], horizon: Horizon,
                 progress: Callable[[int], None] | None = None) -> int:
    """Apply one chunk of events (a replay of its own: see ``Replay``)."""
    return await Replay(horizon).apply(session, envelopes, progress)


async def _fresh(session: AsyncSession) -> bool:
    """No inbox row of the live consumer and no stage record: nothing applied yet."""
    inbox = select(INBOX.c.event_id).where(INBOX.c.consumer == CONSUMER).limit(1)
    records = select(RECORD.c.event_id).limit(1)
    return ((await session.execute(inbox)).first() is None
            and (await session.execute(records)).first() is None)


BULK_TABLES = (INBOX.name, RECORD.name)   # indexes deferred by a bulk replay
DERIVED_TABLES = (FACT.name, COUNT.name)   # and by the derivation after it
INDEXES_SQL = """
SELECT i.oid::regclass::text AS index, c.oid::regclass::text AS table,
       quote_ident(con.conname) AS constraint, pg_get_indexdef(i.oid) AS indexdef,
       pg_get_constraintdef(con.oid) AS constraintdef
FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.conrelid = c.oid
WHERE c.relname IN ({tables}) AND c.relnamespace = current_schema()::regnamespace
ORDER BY x.indisprimary DESC, i.relname"""
PRIMARY_KEYS_SQL = f"""
SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
WHERE x.indisprimary AND c.relname IN ({", ".join(f"'{t}'" for t in BULK_TABLES)})
  AND c.relnamespace = current_schema()::regnamespace"""


async def _defer_indexes(session: AsyncSession, tables: Sequence[str] = BULK_TABLES, *,
                         keys_only: bool = False) -> list[tuple[str, str]]:
    """PostgreSQL: drop every index (primary keys included; ``keys_only``: only the indexes
    of constraints) of these tables (the inbox and the stage records by default); returns
    (table, statement) pairs that recreate them exactly (``pg_get_indexdef``).

    Standard bulk-load practice for a replay into fresh tables: building an index once over
    the loaded rows costs about half of maintaining it row by row (measured here: ~0.7 of
    ~2 PostgreSQL CPU seconds of a national replay). Meanwhile the replay's own memory of
    the ids it applied is what dedupes; another writer's duplicate would fail the rebuild
    when the keys are rebuilt, at the end. Were the process to die before then, the keys
    stay missing: ``Replay`` refuses such a database, and so does the live consumer (its
    ``ON CONFLICT`` needs the inbox key). SQLite: nothing deferred.
    """
    if session.get_bind().dialect.name != "postgresql":
        return []
    drop, restore = [], []
    listed = ", ".join(f"'{t}'" for t in tables)
    for r in (await session.execute(text(INDEXES_SQL.format(tables=listed)))).mappings():
        if keys_only and not r["constraint"]:
            continue
        if r["constraint"]:
            drop.append(f"ALTER TABLE {r['table']} DROP CONSTRAINT {r['constraint']}")
            restore.append((r["table"], f"ALTER TABLE {r['table']} ADD CONSTRAINT "
                                        f"{r['constraint']} {r['constraintdef']}"))
        else:
            drop.append(f"DROP INDEX {r['index']}")
            restore.append((r["table"], r["indexdef"]))
    for statement in drop:
        await session.execute(text(statement))
    return restore


async def _restore_indexes(db: Database, restore: list[tuple[str, str]]) -> None:
    """Run ``_defer_indexes``' statements, each table's in a transaction of its own and the
    tables at once: on two connections PostgreSQL builds two tables' indexes on two cores.
    A table whose key cannot come back (another writer's duplicate) stays without it and
    fails the replay once every table is done; ``_keys_in_place`` refuses it later."""
    by_table: dict[str, list[str]] = defaultdict(list)
    for table, statement in restore:
        by_table[table].append(statement)

    async def rebuild(statements: list[str]) -> None:
        async with db.transaction() as session:
            for statement in statements:
                await session.execute(text(statement))

    for outcome in await asyncio.gather(*map(rebuild, by_table.values()),
                                        return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


async def _keys_in_place(session: AsyncSession) -> bool:
    """Both the inbox and the stage records have their primary key (PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return (await session.execute(text(PRIMARY_KEYS_SQL))).scalar() == len(BULK_TABLES)


async def _in_inbox(session: AsyncSession, envelopes: list[Envelope]) -> set[int]:
    """The ids (as ints) of these envelopes the live consumer's inbox already holds.

    Rather than ``first_time_many``'s ``ON CONFLICT DO NOTHING RETURNING`` (every id sent as
    JSON and sent back) it looks up the few known ids; the new rows are then appended.
    """
    dialect, ids, known = session.get_bind().dialect.name, list({e.id for e in envelopes}), set()
    for i in range(0, len(ids), LOOKUP):   # SQLite binds each id (default cap 32,766)
        known.update(u.int for u in (await session.execute(select(INBOX.c.event_id).where(
            INBOX.c.consumer == CONSUMER,
            in_values(INBOX.c.event_id, ids[i:i + LOOKUP], dialect)))).scalars())
    return known


async def derive_all(session: AsyncSession, horizon: Horizon,
                     replay: Replay | None = None) -> int:
    """Replace every fact with a fresh derivation over the whole horizon; returns fact count.

    After a bulk ``replay`` into fresh tables (PostgreSQL, ``_remembered``) the histories are
    the replay's own records, grouped in Python, instead of being read back and sorted by
    PostgreSQL, and the facts' and counts' primary keys are dropped for the load and built
    once at its end, in this transaction (``_defer_indexes``). The facts' quarter index
    stays: it has a few hundred distinct keys, and kept up during the load, while
    PostgreSQL waits on the derivation anyway, it cost less than building it after (measured:
    0.85-0.90 against 0.91-1.14 PostgreSQL CPU s a national derivation, and no 0.4-0.9 s
    build at the end). Otherwise (tables with history, a live database whose readers keep
    the old facts until commit) the records are read and every index kept up row by row.
    Same facts either way.
    """
    with frozen_heap():
        return await _derive_all(session, horizon, replay)


async def _derive_all(session: AsyncSession, horizon: Horizon, replay: Replay | None,
                      stored: int | None = None) -> int:
    last = horizon.current_qn()
    await activity.lock_areas(session)   # first: live consumers may hold it (``activity``)
    remembered = await _remembered(session, replay, stored)
    await session.execute(delete(FACT))
    sites = await _sites(session)
    restore = ([] if remembered is None
               else await _defer_indexes(session, DERIVED_TABLES, keys_only=True))
    series = _series(await _histories(session)) if remembered is None else remembered
    by_area: dict[Area, list] = defaultdict(list)
    derived = _facts(series, sites, horizon.first_qn, last, by_area)
    await copy_rows(session, FACT, FACT_COLUMNS, derived)   # stored as they are derived
    return await _complete(session, counted(by_area), restore, last)


async def _complete(session: AsyncSession, per_area: Counted,
                    restore: list[tuple[str, str]], last: int) -> int:
    """Every fact stored: its counts, the keys ``restore`` recreates (the facts' and the
    counts'), the latest returns, the activity roll-ups and the data-quality lists, then the
    horizon's ``last`` quarter and a fresh views stamp. Returns the facts counted."""
    await session.execute(delete(COUNT))
    if restore:   # the keys are built (one round trip) while the counts are totalled
        raw = await driver_connection(session)
        building = asyncio.ensure_future(raw.execute(";\n".join(s for _, s in restore)))
        await asyncio.sleep(0)   # sent
        counts = rolled_up(per_area)
        await building
    else:
        counts = rolled_up(per_area)
    await copy_rows(session, COUNT, [*COUNT_KEY, "sites"], counts)
    for statement in facts.derive_latest_returns():
        await session.execute(statement)
    await activity.derive(session)
    await session.run_sync(lambda s: quality.derive(s.connection()))
    dialect = session.get_bind().dialect.name
    await session.execute(facts.set_freshness(dialect, horizon_qn=last,
                                              views_stamp=facts.new_stamp()))
    return sum(sum(quarters.values()) for quarters in per_area.values())


async def _sites(session: AsyncSession) -> dict[str, tuple]:
    """site_id -> (opened_on, closed_on, icb_code, psc_code, region) of every registered site
    (on PostgreSQL through the driver: no ORM row per site)."""
    if session.get_bind().dialect.name == "postgresql":
        raw = await driver_connection(session)
        return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in await raw.fetch(SITES_SQL)}
    return {r.site_id: (r.opened_on, r.closed_on, r.icb_code, r.psc_code, r.region)
            for r in (await session.execute(select(SITE))).all()}


SITES_SQL = f"SELECT site_id, opened_on, closed_on, icb_code, psc_code, region FROM {SITE.name}"


async def _remembered(session: AsyncSession, replay: Replay | None, stored: int | None = None
                      ) -> Iterable[tuple[tuple[str, str], list]] | None:
    """The replay's records as ``_series``, when they are exactly the table's: a bulk replay
    into fresh tables (``Replay.history``) whose rows all committed (the table holds as
    many, ``stored`` if already counted: each written once, under its primary key).
    PostgreSQL only, and only with every ``reported_at`` carrying its offset: there an
    instant reads back as it was written (SQLite keeps no offset; a naive instant is stored
    as the driver interprets it)."""
    records = replay.history() if replay is not None else None
    if (records is None or session.get_bind().dialect.name != "postgresql"
            or not _aware(records)):
        return None
    if stored is None:
        stored = await _stored(session)
    if stored != len(records):
        return None
    return _grouped(records)


def _grouped(records: Sequence[tuple]) -> Iterator[tuple[tuple[str, str], list]]:
    """RECORD_COLUMNS rows as ``_series``: grouped, not sorted (a third of the CPU of sorting
    121k records)."""
    grouped: dict[tuple[str, str], list] = defaultdict(list)
    for r in records:
        grouped[r[0], r[1]].append(r[2:7])
    return ((key, grouped[key]) for key in sorted(grouped))


def _aware(records: Sequence[tuple]) -> bool:
    """Every ``reported_at`` carries its offset (``_remembered``)."""
    return all(r[3].tzinfo is not None for r in records)


def _series(histories: Iterable[Sequence]) -> Iterator[tuple[tuple[str, str], list]]:
    """((site_id, programme), [(applies_from, reported_at, tool, stage, event_id), ...]) per
    series, from ``_histories``' rows (in key order)."""
    for key, rows in groupby(histories, key=_SERIES):
        yield key, [r[2:7] for r in rows]


_SERIES = itemgetter(0, 1)


def _facts(series: Iterable[tuple[tuple[str, str], list]], sites: dict[str, tuple], first: int,
           last: int, by_area: dict[Area, list]) -> Iterator[tuple]:
    """Fact rows (FACT_COLUMNS) of every series of registered sites, in the series' order,
    from ``_series``; each series' (qn, tool, stage) facts are also added to ``by_area``
    (counts)."""
    for (site_id, programme), history in series:
        site = sites.get(site_id)
        if site is None:
            continue
        opened_on, closed_on, icb, psc, region = site
        stages = quarter_stages_of(history, opened_on, closed_on, first, last)
        by_area[(programme, icb, psc, region)].extend(stages)
        for qn, tool, stage in stages:
            yield (site_id, programme, qn, tool, stage, icb, psc, region)


async def _histories(session: AsyncSession) -> list[tuple]:
    """Every stage record as (site_id, programme, applies_from, reported_at (aware), tool,
    stage, event_id), in the facts' key order (site_id, programme), so facts are appended in
    key order. On PostgreSQL through the driver: plain tuples, no ORM row per record."""
    columns = [RECORD.c.site_id, RECORD.c.programme, RECORD.c.applies_from,
               RECORD.c.reported_at, RECORD.c.tool, RECORD.c.stage, RECORD.c.event_id]
    if session.get_bind().dialect.name == "postgresql":
        raw = await driver_connection(session)
        return await raw.fetch(HISTORY_SQL)
    rows = await session.execute(select(*columns).order_by(RECORD.c.site_id,
                                                           RECORD.c.programme))
    return [(s, p, a, aware(r), t, st, e)
            for s, p, a, r, t, st, e in rows]


HISTORY_SQL = ("SELECT site_id, programme, applies_from, reported_at, tool, stage, event_id "
               "FROM reports_stage_record ORDER BY site_id, programme")


async def _stored(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(RECORD))).scalar_one()


async def rebuild_from_history(db: Database, horizon: Horizon,
                               replay: Replay | None = None) -> int:
    """Re-derive every fact from reports' own copy of the events (register + stage history).

    One transaction: readers keep the old facts until it commits, so the swap is atomic.
    ``replay``: the bulk replay that just filled this (fresh) database (see ``derive_all``);
    the facts' key is then rebuilt in this transaction, so a reader waits for its commit.
    The inbox's and the records' indexes that replay left (``Replay.apply_all``'s
    ``indexes_now``) are built meanwhile on two more connections, PostgreSQL working while
    this process derives (the rebuild from the broker: 0.18 s of 3.6 it waited before).
    The records are counted first, in a transaction of their own: the build locks the
    table, and the derivation reads it again only for the latest returns, where it waits.
    """
    stored, building = None, None
    if replay is not None and replay.unbuilt:
        async with db.session() as session:
            stored = await _stored(session)
        building = asyncio.ensure_future(replay.build_indexes(db))
    try:
        async with db.transaction() as session:
            with frozen_heap():
                return await _derive_all(session, horizon, replay, stored)
    finally:
        if building is not None:
            await building


async def replay_from_bus(bus: Bus, db: Database, horizon: Horizon, *,
                          workers: int | None = None, batch_size: int = 5000,
                          wait_seconds: float = 0.5,
                          progress: Callable[[int], None] | None = None,
                          total: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Replay every topic from the beginning into `db` (fresh), then derive the facts.

    Returns (events applied, messages skipped as unreadable: not an envelope, or an event
    ``parse`` refuses, which the live consumer dead-letters). A ``Bus.reader`` (no group to
    join) reads every partition from the earliest retained record up to where it ended when
    the replay started (``Reader.caught_up``), so a replay under live traffic ends too. The
    batches read feed ``Replay.apply_all`` as they arrive (the bulk, pipelined path the
    ``rebuild`` benchmark measures), each event validated once, as it is read, and the facts
    are derived from the replay's memory while the keys the load deferred are built. Nothing
    is committed anywhere: a rebuild does not resume; run it again into a fresh database.
    ``total`` is told, once, how many messages the replay will read (a progress bar's
    total), as soon as every partition's end is known.

    ``workers`` (default: one per CPU this process may use): into fresh PostgreSQL tables,
    that many forked processes share the partitions between them (``_replay_split``); one
    replays alone.
    """
    workers = _workers(workers)
    if workers > 1 and db.dialect == "postgresql":
        n = await _shares_of_topics(bus, workers)
        feeds = [_BusFeed(bus.reader(list(topics.ALL_TOPICS), share=(i, n)), batch_size,
                          wait_seconds) for i in range(n)]
        split = await _replay_split(db, horizon, feeds, progress, total) if n > 1 else None
        if split is not None:
            return split
    reader, read = bus.reader(list(topics.ALL_TOPICS)), _Read()
    await reader.start()
    try:
        applied, unreadable = await _replay_alone(
            db, horizon, _envelopes(reader, read, batch_size, wait_seconds, progress, total))
    finally:
        await reader.stop()
    return applied, read.unreadable + unreadable


async def replay_envelopes(db: Database, horizon: Horizon, envelopes: Sequence[Envelope], *,
                           workers: int | None = None,
                           progress: Callable[[int], None] | None = None) -> int:
    """``replay_from_bus`` from decoded events instead of a broker (the engine alone: the
    ``rebuild`` benchmarks): into `db` (fresh), every fact derived; returns events applied.
    Split between ``workers`` forked processes by a hash of each event's site (of its key,
    ``subject``, if it names none), so, unlike the broker's partitions (activity is keyed by
    resident), no two workers add to one site's activity counters and wait on each other's
    row locks; else replayed in one, ``CHUNK`` events at a time."""
    workers = _workers(workers)
    if workers > 1 and db.dialect == "postgresql":
        shares: list[list[Envelope]] = [[] for _ in range(workers)]
        for envelope in envelopes:
            data = envelope.data
            site = (data.get("site_id") if isinstance(data, dict)
                    else getattr(data, "site_id", None)) or envelope.subject
            shares[zlib.crc32(site.encode()) % workers].append(envelope)
        split = await _replay_split(db, horizon, [_ListFeed(share) for share in shares],
                                    progress, None)
        if split is not None:
            return split[0]
    return (await _replay_alone(db, horizon, _chunked(envelopes), progress))[0]


CHUNK = 5000   # events a transaction, replaying decoded events


def _chunked(envelopes: Sequence[Envelope]) -> Iterator[Sequence[Envelope]]:
    """Decoded events ``CHUNK`` at a time, in order."""
    return (envelopes[i:i + CHUNK] for i in range(0, len(envelopes), CHUNK))


async def _replay_alone(db: Database, horizon: Horizon, chunks: Chunks,
                        progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """One process's replay into `db` (fresh), the facts then derived while the keys it
    deferred are built: (events applied, events ``parse`` refused)."""
    replay = Replay(horizon)
    applied = await replay.apply_all(db, chunks, progress, indexes_now=False)
    await rebuild_from_history(db, horizon, replay)
    return applied, replay.unreadable


def _workers(workers: int | None) -> int:
    """Replay processes: unless told, one per CPU this process may run on (its affinity:
    a container pinned to two of the host's cores gets two)."""
    if workers is not None:
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def _shares_of_topics(bus: Bus, workers: int) -> int:
    """Into how many shares the topics split (``Bus.reader``'s ``share``) for ``workers``:
    as many as the partitions allow when every topic has as many (a site's events are then
    on one partition number everywhere), else 1."""
    probe = bus.reader(list(topics.ALL_TOPICS))
    await probe.start()
    try:
        sizes = set(probe.partition_counts().values())
    finally:
        await probe.stop()
    return min(workers, *sizes) if len(sizes) == 1 else 1


@dataclass
class _Read:
    """What a replay's reader fetched, and how much of it was unreadable."""

    fetched: int = 0
    unreadable: int = 0


async def _envelopes(reader: Reader, read: _Read, batch_size: int, wait_seconds: float,
                     progress: Callable[[int], None] | None,
                     total: Callable[[int], None] | None) -> AsyncIterator[list[Envelope]]:
    """The reader's messages as envelopes, a batch at a time, until it caught up (see
    ``replay_from_bus`` for ``progress`` and ``total``)."""
    told = False
    while not await reader.caught_up():
        batch = await reader.values(max_records=batch_size, timeout=wait_seconds)
        read.fetched += len(batch)
        if total is not None and not told and (left := await reader.remaining()) is not None:
            told = True
            total(read.fetched + left)
        if not batch:
            continue
        envelopes = _decoded(batch)
        read.unreadable += len(batch) - len(envelopes)
        if progress:
            progress(len(batch))
        yield envelopes


async def _replay_split(db: Database, horizon: Horizon, feeds: Sequence[_Feed],
                        progress: Callable[[int], None] | None,
                        total: Callable[[int], None] | None) -> tuple[int, int] | None:
    """A replay in forked processes (``shared.forked``), one per feed (a share of every
    topic's partitions, ``Bus.reader``'s ``share``; or of decoded events, by site), each
    writing its events and then deriving its own sites' facts; this process adds their
    counts up and derives the rest. Returns (applied, unreadable) as ``replay_from_bus``;
    None (replay in one process instead) unless the tables are fresh. Should the workers'
    records not be the table's (another writer; an instant without its offset), the facts
    are derived from the table instead, as ``derive_all`` does then.

    Why it is correct: a site's events (register, stages, and the activity counters it keys)
    are on one partition number of every topic (the key is the site id; the activity topics
    are keyed by resident, and their counters add up whichever process writes them, in one
    lock order: ``activity``), so each worker has every record of its sites, and the facts of
    disjoint sites count up separately (``merged``). Duplicates are deduped in each worker's
    memory: a redelivered message is on its original's partition. The inbox's and the
    records' keys, dropped here once for every worker, are built at the end and fail the
    rebuild on any duplicate nonetheless. Why it is faster: one process replaying is bound
    by its own CPU (validating, building rows; about 2.1 CPU s of a national rebuild's
    2.6), which the workers share out between the cores.

    A worker that fails stops the others and fails the rebuild, with the keys rebuilt
    (or missing, if another writer's duplicate stops them: refused, as a replay that died).
    """
    async with db.transaction() as session:
        if not await _keys_in_place(session):
            raise RuntimeError(UNFINISHED)
        if not await _fresh(session):
            return None
        restore = await _defer_indexes(session)
        restore_derived = await _defer_indexes(session, DERIVED_TABLES, keys_only=True)
    last, n = horizon.current_qn(), len(feeds)
    shares = [_Share(db.url, feed, horizon, last) for feed in feeds]
    told: dict[int, int] = {}

    def noted(i: int, note: tuple[str, int]) -> None:
        kind, count = note
        if kind == "read" and progress:
            progress(count)
        elif kind == "total" and total is not None:
            told[i] = count
            if len(told) == n:
                total(sum(told.values()))

    try:
        parts: list[_Shared] = await run_forked(_replay_share, shares, noted)
    except BaseException:
        with suppress(Exception):
            await _restore_indexes(db, restore + restore_derived)
        raise
    async with db.session() as session:
        stored = await _stored(session)
    building = asyncio.ensure_future(_restore_indexes(db, restore))
    try:
        async with db.transaction() as session:
            with frozen_heap():
                await activity.lock_areas(session)
                if (stored == sum(part.records for part in parts)
                        and all(part.per_area is not None for part in parts)):
                    await _complete(session, merged(part.per_area for part in parts),
                                    restore_derived, last)
                else:   # the workers' records are not the table's: derive from the table
                    await session.execute(delete(FACT))
                    for _, statement in restore_derived:
                        await session.execute(text(statement))
                    await _derive_all(session, horizon, None)
    finally:
        await building
    return sum(part.applied for part in parts), sum(part.unreadable for part in parts)


class _Feed(Protocol):
    """What a worker of ``_replay_split`` replays: its share of the events, a chunk at a
    time, telling ``note`` ("read", n) and ("total", n) as ``replay_from_bus`` tells
    ``progress`` and ``total``, and counting the unreadable in ``read``."""

    def chunks(self, read: _Read, note: Callable[[tuple[str, int]], None]
               ) -> AbstractAsyncContextManager[Chunks]: ...


@dataclass
class _BusFeed:
    """A share of the topics' partitions (a reader not started: the worker starts it)."""

    reader: Reader
    batch_size: int
    wait_seconds: float

    @asynccontextmanager
    async def chunks(self, read: _Read, note: Callable[[tuple[str, int]], None]
                     ) -> AsyncIterator[Chunks]:
        await self.reader.start()
        try:
            yield _envelopes(self.reader, read, self.batch_size, self.wait_seconds,
                             lambda n: note(("read", n)), lambda n: note(("total", n)))
        finally:
            await self.reader.stop()


@dataclass
class _ListFeed:
    """A share of decoded events (``replay_envelopes``)."""

    envelopes: list[Envelope]

    @asynccontextmanager
    async def chunks(self, read: _Read, note: Callable[[tuple[str, int]], None]
                     ) -> AsyncIterator[Chunks]:
        note(("total", len(self.envelopes)))

        def each() -> Iterator[Sequence[Envelope]]:
            for chunk in _chunked(self.envelopes):
                note(("read", len(chunk)))
                yield chunk
        yield each()


@dataclass
class _Share:
    """What one worker of ``_replay_split`` is given (in its forked memory)."""

    url: str
    feed: _Feed
    horizon: Horizon
    last: int   # the horizon's last quarter, as the parent saw it


@dataclass
class _Shared:
    """What one worker did: events applied, messages unreadable, stage records written, and
    its sites' facts counted per area (None: not derived, its records lacking offsets)."""

    applied: int
    unreadable: int
    records: int
    per_area: Counted | None


async def _replay_share(share: _Share, note: Callable[[tuple[str, int]], None]) -> _Shared:
    """A worker of ``_replay_split``: its share replayed, then its own sites' facts."""
    db, read, replay = Database(share.url, pool_size=3), _Read(), Replay.into_fresh(share.horizon)
    try:
        async with share.feed.chunks(read, note) as chunks:
            applied = await replay.apply_all(db, chunks)
        records, per_area = replay.history() or [], None
        if _aware(records):
            by_area: dict[Area, list] = defaultdict(list)
            with frozen_heap():
                async with db.transaction() as session:
                    derived = _facts(_grouped(records), await _sites(session),
                                     share.horizon.first_qn, share.last, by_area)
                    await copy_rows(session, FACT, FACT_COLUMNS, derived)
            per_area = counted(by_area)
        return _Shared(applied, read.unreadable + replay.unreadable, len(records), per_area)
    finally:
        await db.dispose()


Chunks = Iterable[Sequence[Envelope]] | AsyncIterable[Sequence[Envelope]]


async def _each(chunks: Chunks) -> AsyncIterator[Sequence[Envelope]]:
    """Chunks from a plain or an async iterable, one at a time."""
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


def _decoded(batch: Sequence[bytes]) -> list[Envelope]:
    """The envelopes of these messages (their values), without the ones that are not one
    or whose event ``parse`` refuses. Read in one pass (``shared.events.read``): their
    ``data`` is the event itself, which the replay takes as it is."""
    out = []
    for value in batch:
        try:
            out.append(read(value)[0])   # type: ignore[index]  # wanted: all
        except ValueError:
            continue
    return out


KNOWN = {*SITE_TYPES, STAGE, *activity.TYPES}
