"""Record observation sets: insert, detect duplicates, write one event per real insert.

Invariants
- A set is identified by its generated ``id``; ``(source_platform, platform_set_id)`` is unique.
- Insert is ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` for the whole batch (one
  JSON-parameter statement on PostgreSQL, Core executemany on SQLite): only rows that really
  went in get an ``ObservationRecorded`` outbox row, in the same transaction, so a duplicate
  never re-emits an event. Given a PostgreSQL connection outside a transaction (the group
  commit), the sets and their outbox rows go in ONE statement, atomic on its own
  (``shared.outbox.insert_with_events``): one round trip instead of five.
- A row that did not go in collided with an existing ``(source_platform, platform_set_id)``:
  same content (keyed content MAC) -> "duplicate" of the existing id; different content ->
  rejected with 409 naming ``platform_set_id``.
- A row that amends an earlier reading (``validation.AMENDS``, from FHIR ``amended`` /
  ``corrected``) is refused with 409 naming ``status`` when a set of the same resident at the
  same time is already recorded under another ``platform_set_id``: a recorded reading is
  never replaced, and a second set would count the resident twice. Under its own key it is
  a duplicate or a conflict as above.
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
from services.ingest.validation import AMENDS
from shared.dialect import aware, driver_connection, insert_rows
from shared.outbox import add_encoded, insert_with_events, utcnow
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
    refused = await _amendments_refused(session, rows)
    todo = [row for row in rows if id(row) not in refused] if refused else rows
    for row in todo:
        row["id"] = uuid.uuid4()
        row["received_at"] = received_at
    if todo and _outside_a_transaction_on_postgresql(session):
        raw = await driver_connection(session)
        inserted = set(await insert_with_events(raw, SETS, todo, encoded_events(todo, utcnow()),
                                                key="id"))
    else:
        inserted = set(await insert_rows(session, SETS, todo, ignore_conflicts=True,
                                         returning="id")) if todo else set()
        fresh = [row for row in todo if row["id"] in inserted]
        await add_encoded(session, encoded_events(fresh, utcnow()))  # one per real insert
    missed = [row for row in todo if row["id"] not in inserted]
    existing = await _existing(session, missed) if missed else {}
    return [refused.get(id(row)) or _outcome(row, inserted, existing) for row in rows]


async def _amendments_refused(session: AsyncSession | AsyncConnection,
                              rows: list[dict[str, Any]]) -> dict[int, Outcome]:
    """id(row) -> its 409 for rows amending a reading already recorded (see invariants);
    removes the ``AMENDS`` key from every row (it is not a column)."""
    amending = [(row, status) for row in rows if (status := row.pop(AMENDS, None))]
    if not amending:
        return {}
    query = select(SETS.c.id, SETS.c.resident, SETS.c.taken_at, SETS.c.source_platform,
                   SETS.c.platform_set_id).where(SETS.c.resident.in_(
                       sorted({row["resident"] for row, _ in amending})))
    recorded: dict[tuple[str, datetime], list[tuple[uuid.UUID, str, str | None]]] = {}
    for set_id, resident, taken_at, platform, key in (await session.execute(query)).all():
        recorded.setdefault((resident, aware(taken_at)), []).append((set_id, platform, key))
    refused = {}
    for row, status in amending:
        earlier = [set_id for set_id, platform, key in
                   recorded.get((row["resident"], aware(row["taken_at"])), [])
                   if (platform, key) != (row["source_platform"], row["platform_set_id"])
                   or key is None]
        if earlier:
            refused[id(row)] = Outcome("rejected", None, 409, [{
                "field": "status", "value": status,
                "reason": f"amends a reading of set {earlier[0]}, already recorded for this "
                          "resident at this time; recorded readings are not replaced, so "
                          "nothing was stored (amendments are not supported yet)"}])
    return refused


def _outside_a_transaction_on_postgresql(session: AsyncSession | AsyncConnection) -> bool:
    return (isinstance(session, AsyncConnection) and session.dialect.name == "postgresql"
            and not session.in_transaction())


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
