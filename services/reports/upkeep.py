"""Fact upkeep once per consumer batch, at the end of the batch's transaction.

Handlers only record what changed (``mark``: a site and programme, or a site and all its
programmes; ``remember``: the event, for freshness). ``flush``, called by the batch handler
after every event of the batch is recorded, then recomputes every marked series in bulk - four
statements for a whole consumer batch instead of several per event - and applies the counter
deltas, inside the same transaction as the events' inbox rows. It runs the sync Connection
API through ``AsyncSession.run_sync``.

Series are recomputed whole (from the first materialised quarter): a superset of "from the
changed quarter on", so a late correction rewrites its quarter and every later one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports import activity, quality
from services.reports.domain.counts import deltas
from services.reports.domain.stages import quarter_facts
from services.reports.facts import (
    COUNT,
    COUNT_KEY,
    FACT,
    FRESH,
    LATEST,
    RECORD,
    SITE,
    Horizon,
    add_latest_returns,
    fact_row,
    last_event,
    new_stamp,
    points,
    set_freshness,
)
from shared.dialect import insert_ignore, upsert_add
from shared.events import Envelope

DIRTY, LAST, HORIZON = "reports.dirty", "reports.last_event", "reports.horizon"
RECORDS = "reports.records"
SHOWN = ("stage", "tool", "icb_code", "psc_code", "region")   # of a fact, in the views
CHUNK = 400


def mark(session: AsyncSession, horizon: Horizon, site_id: str, programme: str | None) -> None:
    """Recompute this series (programme None: every programme of the site) at ``flush``."""
    session.info[HORIZON] = horizon
    session.info.setdefault(DIRTY, set()).add((site_id, programme))


def add_record(session: AsyncSession, row: dict) -> None:
    """A stage record to insert (ignoring a known event id) before the facts are derived."""
    session.info.setdefault(RECORDS, []).append(row)


def remember(session: AsyncSession, envelope: Envelope, horizon: Horizon | None = None) -> None:
    """The last event applied, written once per transaction (freshness)."""
    session.info[LAST] = envelope
    if horizon is not None:
        session.info[HORIZON] = horizon


def tick(session: AsyncSession, horizon: Horizon) -> None:
    """Check the horizon at the next flush even with nothing marked (a new quarter extends
    the facts). Like every transaction that refreshes facts, it must hold
    ``activity.lock_areas``."""
    session.info[HORIZON] = horizon


async def flush(session: AsyncSession) -> None:
    """Apply what was marked and remembered in this transaction (nothing if nothing was)."""
    await session.run_sync(_apply)


def _apply(session: Session) -> None:
    dirty, last = session.info.pop(DIRTY, set()), session.info.pop(LAST, None)
    horizon: Horizon | None = session.info.pop(HORIZON, None)
    if horizon is None and last is None and RECORDS not in session.info:
        return
    conn = session.connection()
    records = session.info.pop(RECORDS, None)
    if records:
        named = {r["programme"] for r in records}
        returned = set(conn.execute(select(LATEST.c.programme).distinct().where(
            LATEST.c.programme.in_(sorted(named)))).scalars())
        conn.execute(insert_ignore(RECORD, conn.dialect.name), records)
        add_latest_returns(conn, records)
        if named - returned:   # a programme's first return: its data-quality lists
            quality.fill(conn, programmes=named - returned)
    changed = bool(records) or bool(dirty)
    if horizon is not None:
        if not session.info.get(activity.EXCLUSIVE):
            raise RuntimeError("facts refreshed without activity.lock_areas (see activity)")
        upto, extended = _horizon(conn, horizon)
        series = _all_series(conn) if extended else _resolve(conn, dirty)
        refresh(conn, series, horizon.first_qn, upto)
        changed = changed or extended
    if last is not None or changed:
        _touch(conn, last, changed)


def _horizon(conn: Connection, horizon: Horizon) -> tuple[int, bool]:
    """The quarter to derive up to, and whether it moved on (then every series is redone)."""
    current = horizon.current_qn()
    if horizon.seen is not None and horizon.seen >= current:
        return horizon.seen, False
    stored = conn.execute(select(FRESH.c.horizon_qn).where(FRESH.c.id == 1)).scalar()
    if stored is not None and stored >= current:
        horizon.seen = stored   # a committed value (we wrote nothing): safe to cache
        return stored, False
    conn.execute(set_freshness(conn.dialect.name, horizon_qn=current))
    return current, stored is not None


def _all_series(conn: Connection) -> set[tuple[str, str]]:
    return {(s, p) for s, p in conn.execute(
        select(RECORD.c.site_id, RECORD.c.programme).distinct())}


def _resolve(conn: Connection, dirty: set[tuple[str, str | None]]) -> set[tuple[str, str]]:
    whole = sorted({s for s, p in dirty if p is None})
    out = {(s, p) for s, p in dirty if p is not None}
    for i in range(0, len(whole), CHUNK):
        out |= {(s, p) for s, p in conn.execute(
            select(RECORD.c.site_id, RECORD.c.programme).distinct()
            .where(RECORD.c.site_id.in_(whole[i:i + CHUNK])))}
    return out


def refresh(conn: Connection, series: Iterable[tuple[str, str]], first: int, last: int) -> None:
    """Replace the facts of these series for quarters first..last; apply counter deltas."""
    ordered = sorted(series)
    for i in range(0, len(ordered), CHUNK):
        _refresh_chunk(conn, ordered[i:i + CHUNK], first, last)


def _refresh_chunk(conn: Connection, chunk: list[tuple[str, str]], first: int,
                   last: int) -> None:
    key = tuple_(FACT.c.site_id, FACT.c.programme).in_(chunk)
    removed = conn.execute(delete(FACT).where(key).returning(
        FACT.c.site_id, FACT.c.programme, FACT.c.qn, FACT.c.tool, FACT.c.stage,
        FACT.c.icb_code, FACT.c.psc_code, FACT.c.region)).mappings().all()
    histories: dict[tuple[str, str], list] = defaultdict(list)
    sites = {}
    for row in conn.execute(
            select(RECORD.c.site_id, RECORD.c.programme, RECORD.c.applies_from,
                   RECORD.c.reported_at, RECORD.c.tool, RECORD.c.stage, RECORD.c.event_id,
                   SITE.c.opened_on, SITE.c.closed_on, SITE.c.icb_code, SITE.c.psc_code,
                   SITE.c.region)
            .join(SITE, SITE.c.site_id == RECORD.c.site_id)
            .where(tuple_(RECORD.c.site_id, RECORD.c.programme).in_(chunk))):
        histories[(row.site_id, row.programme)].append(tuple(row[2:7]))
        sites[row.site_id] = row
    added = [fact_row(sites[s], p, f) for (s, p), history in histories.items()
             for f in quarter_facts(points(history), sites[s].opened_on, sites[s].closed_on,
                                    first, last)]
    if added:
        conn.execute(insert(FACT), added)
    by_programme: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for r in removed:
        by_programme[r["programme"]][0].append(r)
    for a in added:
        by_programme[a["programme"]][1].append(a)
    rows = [d for p, (old, new) in by_programme.items() for d in deltas(p, old, new)]
    if rows:
        conn.execute(upsert_add(COUNT, conn.dialect.name, COUNT_KEY, "sites"), rows)
    moved = _moved(removed, added)
    retooled = _retooled(moved)
    if retooled:
        activity.follow_facts(conn, retooled)
    quality.refresh(conn, {(site_id, qn) for site_id, _, qn in moved})


def _moved(removed: Iterable[Mapping], added: Iterable[Mapping]
           ) -> dict[tuple[str, str, int], tuple[Mapping | None, Mapping | None]]:
    """(site, programme, quarter) -> (the fact removed, the fact added; None: none), in key
    order, for each fact removed, added or changed in what the views show of it (``SHOWN``:
    the tool the per-tool roll-ups file it under, and what data quality lists)."""
    before = {(r["site_id"], r["programme"], r["qn"]): r for r in removed}
    after = {(r["site_id"], r["programme"], r["qn"]): r for r in added}

    def shown(fact: Mapping | None) -> tuple | None:
        return None if fact is None else tuple(fact[c] for c in SHOWN)
    return {key: (before.get(key), after.get(key))
            for key in sorted(before.keys() | after.keys())
            if shown(before.get(key)) != shown(after.get(key))}


def _retooled(moved: Mapping[tuple[str, str, int], tuple[Mapping | None, Mapping | None]]
              ) -> dict[tuple[str, int], list[tuple[str, str | None, str | None]]]:
    """(site, quarter) -> (programme, tool before, tool after) where the stage in force
    names another tool than before (None: no fact, or a fact naming none)."""
    out: dict[tuple[str, int], list] = defaultdict(list)
    for (site_id, programme, qn), facts in moved.items():
        was, now = (None if fact is None else fact["tool"] for fact in facts)
        if was != now:
            out[site_id, qn].append((programme, was, now))
    return out


def _touch(conn: Connection, envelope: Envelope | None, changed: bool) -> None:
    """Freshness; and a new views stamp when the register, history or facts changed."""
    values = {} if envelope is None else last_event(envelope)
    if changed:
        values["views_stamp"] = new_stamp()
    conn.execute(set_freshness(conn.dialect.name, **values))
