"""Record observation sets: insert, detect duplicates, write one event per real insert.

Invariants
- A set is identified by its generated ``id``; ``(source_platform, platform_set_id)`` is unique.
- Insert is ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` for the whole batch (one
  ``unnest`` statement on PostgreSQL, Core executemany on SQLite): only rows that really went
  in get an ``ObservationRecorded`` outbox row, in the same transaction, so a duplicate never
  re-emits an event.
- A row that did not go in collided with an existing ``(source_platform, platform_set_id)``:
  same content (keyed content MAC) -> "duplicate" of the existing id; different content ->
  rejected with 409 naming ``platform_set_id``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.events import encoded_events
from services.ingest.events import recorded_event as recorded_event  # re-exported
from services.ingest.models import SETS
from shared.dialect import insert_rows
from shared.outbox import add_encoded, utcnow
from shared.problems import Problem


def dialect_of(session: AsyncSession | AsyncConnection) -> str:
    """The dialect name of an ORM session or a Core connection (the hot path uses the latter)."""
    if isinstance(session, AsyncConnection):
        return session.dialect.name
    return session.get_bind().dialect.name


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["accepted", "duplicate", "rejected"]
    id: uuid.UUID | None
    status: int
    errors: list[dict[str, Any]] | None = None


async def record_sets(session: AsyncSession | AsyncConnection, rows: list[dict[str, Any]], *,
                      received_at: datetime) -> list[Outcome]:
    """Insert prepared rows (caller commits); one outcome per row, in order."""
    if not rows:
        return []
    for row in rows:
        row["id"] = uuid.uuid4()
        row["received_at"] = received_at
    inserted = set(await insert_rows(session, SETS, rows, ignore_conflicts=True,
                                     returning="id"))
    fresh = [row for row in rows if row["id"] in inserted]
    await add_encoded(session, encoded_events(fresh, utcnow()))  # one per real insert
    missed = [row for row in rows if row["id"] not in inserted]
    existing = await _existing(session, missed) if missed else {}
    return [_outcome(row, inserted, existing) for row in rows]


async def _existing(session: AsyncSession | AsyncConnection, rows: list[dict[str, Any]]
                    ) -> dict[tuple[str, str], tuple[uuid.UUID, str]]:
    pairs = {(r["source_platform"], r["platform_set_id"]) for r in rows if r["platform_set_id"]}
    if not pairs:
        return {}
    key = tuple_(SETS.c.source_platform, SETS.c.platform_set_id)
    query = select(SETS.c.source_platform, SETS.c.platform_set_id, SETS.c.id,
                   SETS.c.content_hash).where(key.in_(list(pairs)))
    return {(p, s): (i, h) for p, s, i, h in (await session.execute(query)).all()}


def _outcome(row: dict[str, Any], inserted: set[uuid.UUID],
             existing: dict[tuple[str, str], tuple[uuid.UUID, str]]) -> Outcome:
    if row["id"] in inserted:
        return Outcome("accepted", row["id"], 201)
    found = existing.get((row["source_platform"], row["platform_set_id"]))
    if found is None:  # only an id collision could get here; uuid4 makes it theoretical
        raise RuntimeError("a set was neither inserted nor found")
    if found[1] == row["content_hash"]:
        return Outcome("duplicate", found[0], 200)
    return Outcome("rejected", None, 409, [{
        "field": "platform_set_id", "value": row["platform_set_id"],
        "reason": f"already used by set {found[0]} with different content"}])


async def get_set(session: AsyncSession | AsyncConnection, set_id: uuid.UUID) -> dict[str, Any]:
    """A stored set as a dict (no NHS number exists to leak: only the pseudonym is stored)."""
    row = (await session.execute(select(SETS).where(SETS.c.id == set_id))).mappings().first()
    if row is None:
        raise Problem(404, "Not Found", f"no observation set {set_id}")
    out = dict(row)
    out["soft_signs"] = out["soft_signs"].split()
    return out
