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
- A stored set is never edited or deleted. One that no longer stands is *withdrawn*
  (``withdraw``): ``withdrawn_at`` is set once, in the same transaction as its one
  ``ObservationSetWithdrawn`` event, so consumers take back what it counted.
- A row that amends an earlier reading (``validation.AMENDS``, from FHIR ``amended`` /
  ``corrected``) *replaces* the standing set of the same resident at the same time that its
  own platform recorded (``_replaced``: the one under the row's own key - the same
  Observation sent again with a new status - else its only one there): it is stored as a
  new set holding the earlier set's values with the amended ones over them, and the earlier
  set is withdrawn with ``replaced_by`` naming the new one - so the resident is never
  counted twice for one time. The new set's key is the row's with ``~`` and a digest of its
  content appended (the earlier version may hold the row's key). Its ``content_hash`` is
  that of the amendment as sent, so a retry is a duplicate of the standing set. Refused
  with 409 naming ``status``: a set recorded by another platform at that time, or several
  of its own. With nothing standing at that time it is recorded like any set.
- Parameters entered in error (``validation.WITHDRAWS``, from FHIR ``entered-in-error``)
  are left out of the replacing set. If no reading is left, nothing is recorded: the
  standing set is only withdrawn (outcome ``withdrawn``). A row that only withdraws, with
  nothing of its platform's standing at that time, is ``withdrawn`` again if its platform's
  set there was withdrawn already (a retry), else ``unmatched`` (200, a warning: nothing to
  withdraw); one naming a parameter the standing set does not record is refused with 409.
  Such a row is never stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.domain.rules import PARAMETERS
from services.ingest.events import SOURCE, encoded_events
from services.ingest.events import recorded_event as recorded_event  # re-exported
from services.ingest.models import SETS
from services.ingest.validation import AMENDS, WITHDRAWS
from shared.dialect import aware, driver_connection, insert_rows
from shared.events.observations import ObservationSetWithdrawn
from shared.outbox import add_encoded, add_events, insert_with_events, utcnow
from shared.problems import Problem


def dialect_of(session: AsyncSession | AsyncConnection) -> str:
    """The dialect name of an ORM session or a Core connection (the hot path uses the latter)."""
    if isinstance(session, AsyncConnection):
        return session.dialect.name
    return session.get_bind().dialect.name


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["accepted", "duplicate", "rejected", "withdrawn", "unmatched"]
    id: uuid.UUID | None
    status: int
    errors: list[dict[str, Any]] | None = None


async def record_sets(session: AsyncSession | AsyncConnection, rows: list[dict[str, Any]], *,
                      received_at: datetime) -> list[Outcome]:
    """Insert prepared rows (caller commits); one outcome per row, in order."""
    if not rows:
        return []
    settled, replacing = await _amendments(session, rows, received_at)
    todo = [row for row in rows if id(row) not in settled] if settled else rows
    for row in todo:
        row["id"] = uuid.uuid4()
        row["received_at"] = received_at
    if todo and not replacing and _outside_a_transaction_on_postgresql(session):
        raw = await driver_connection(session)
        inserted = set(await insert_with_events(raw, SETS, todo, encoded_events(todo, utcnow()),
                                                key="id"))
    else:
        inserted = set(await insert_rows(session, SETS, todo, ignore_conflicts=True,
                                         returning="id")) if todo else set()
        fresh = [row for row in todo if row["id"] in inserted]
        await add_encoded(session, encoded_events(fresh, utcnow()))  # one per real insert
    for row in todo:
        if row["id"] in inserted and id(row) in replacing:
            earlier, status = replacing[id(row)]
            if not await withdraw(session, earlier, reason=status, at=received_at,
                                  replaced_by=row["id"]):
                raise Problem(409, "Conflict", f"set {earlier} was withdrawn while this "
                              "request replaced it; nothing was stored: send it again")
    missed = [row for row in todo if row["id"] not in inserted]
    existing = await _existing(session, missed) if missed else {}
    return [settled.get(id(row)) or _outcome(row, inserted, existing) for row in rows]


async def withdraw(session: AsyncSession | AsyncConnection, set_id: uuid.UUID, *, reason: str,
                   at: datetime, replaced_by: uuid.UUID | None = None) -> dict[str, Any] | None:
    """Withdraw a standing set and write its ``ObservationSetWithdrawn`` (caller commits).

    Returns the set as now stored (as ``get_set`` reads it), or None when it was not standing
    (unknown, or withdrawn already: a set is withdrawn at most once, so its event is written
    at most once).
    """
    stmt = (update(SETS).where(SETS.c.id == set_id, SETS.c.withdrawn_at.is_(None))
            .values(withdrawn_at=at, withdrawal_reason=reason, replaced_by=replaced_by)
            .returning(*SETS.c))
    row = (await session.execute(stmt)).mappings().first()
    if row is None:
        return None
    await add_events(session, [ObservationSetWithdrawn(
        observation_id=row["id"], resident=row["resident"], site_id=row["site_id"],
        icb_code=row["icb_code"], psc_code=row["psc_code"], taken_at=aware(row["taken_at"]),
        source_platform=row["source_platform"], withdrawn_at=at, reason=reason,
        replaced_by=replaced_by)], source=SOURCE)
    return _as_set(row)


_MERGED = (*PARAMETERS, "spo2_scale_claim", "recorder")


async def _amendments(session: AsyncSession | AsyncConnection, rows: list[dict[str, Any]],
                      received_at: datetime
                      ) -> tuple[dict[int, Outcome], dict[int, tuple[uuid.UUID, str]]]:
    """Resolve the rows amending an earlier reading (see the invariants): (id(row) -> its
    outcome, for those settled without an insert: refused, a duplicate of the standing set,
    or a withdrawal that left nothing to record; id(row) -> (the standing set it replaces, its
    status), for those merged over that set's values here). Removes the ``AMENDS`` and
    ``WITHDRAWS`` keys from every row (they are not columns)."""
    amending = [(row, status, row.pop(WITHDRAWS, []))
                for row in rows if (status := row.pop(AMENDS, None))]
    if not amending:
        return {}, {}
    query = select(SETS).where(
        SETS.c.resident.in_(sorted({row["resident"] for row, _, _ in amending})),
        SETS.c.taken_at.in_(sorted({row["taken_at"] for row, _, _ in amending})))
    recorded: dict[tuple[str, datetime], list[Any]] = {}
    for found in (await session.execute(query)).mappings().all():
        recorded.setdefault((found["resident"], aware(found["taken_at"])), []).append(found)
    settled: dict[int, Outcome] = {}
    replacing: dict[int, tuple[uuid.UUID, str]] = {}
    for row, status, withdraws in amending:
        there = recorded.get((row["resident"], aware(row["taken_at"])), [])
        standing = [found for found in there if found["withdrawn_at"] is None]
        if not standing:
            if withdraws and not _readings(row):
                settled[id(row)] = _nothing_to_withdraw(row, status, there)
            continue   # an amendment: recorded as any set
        target = _replaced(standing, row)
        if target is None:
            own = any(found["source_platform"] == row["source_platform"] for found in standing)
            settled[id(row)] = _refused(status, standing[0]["id"], (
                "with other sets of yours, so which one it replaces is ambiguous; withdraw "
                "the ones entered in error first" if own else "by another platform; only the "
                "platform that recorded a reading can amend it"))
        elif target["content_hash"] == row["content_hash"]:
            settled[id(row)] = Outcome("duplicate", target["id"], 200)
        elif withdraws and not any(target[name] is not None for name in withdraws):
            settled[id(row)] = _refused(status, target["id"], "without " + " or ".join(
                withdraws) + ", so there is nothing entered in error to withdraw")
        else:
            _merge(row, target, withdraws)
            if _readings(row):
                if row["platform_set_id"] is not None:   # an earlier version may hold it
                    row["platform_set_id"] += "~" + row["content_hash"][:16]
                replacing[id(row)] = (target["id"], status)
            elif await withdraw(session, target["id"], reason=status, at=received_at):
                settled[id(row)] = Outcome("withdrawn", target["id"], 200)
            else:
                settled[id(row)] = _refused(status, target["id"], "and withdrawn meanwhile")
    return settled, replacing


def _replaced(standing: list[Any], row: dict[str, Any]) -> Any:
    """The standing set an amending row replaces: its platform's set under the row's own key
    (the same Observation sent again with a new status), else its platform's only set at
    that time; None when its platform has none there, or several."""
    own = [found for found in standing if found["source_platform"] == row["source_platform"]]
    same = [found for found in own if row["platform_set_id"] is not None
            and found["platform_set_id"] == row["platform_set_id"]]
    return same[0] if same else own[0] if len(own) == 1 else None


def _readings(row: dict[str, Any]) -> bool:
    """Whether a row holds any reading (a parameter or a soft sign)."""
    return bool(row["soft_signs"]) or any(row[name] is not None for name in PARAMETERS)


def _merge(row: dict[str, Any], earlier: Any, withdraws: list[str]) -> None:
    """The amended values over the earlier set's: a parameter the amendment leaves out keeps
    its recorded value, unless it was entered in error (``withdraws``). Soft signs likewise,
    as a whole. The client's NEWS2 claim is the amendment's only: the earlier claim
    described the earlier values."""
    for name in _MERGED:
        if row[name] is None and name not in withdraws:
            row[name] = earlier[name]
    row["soft_signs"] = row["soft_signs"] or earlier["soft_signs"]


def _nothing_to_withdraw(row: dict[str, Any], status: str, there: list[Any]) -> Outcome:
    """A row that only withdraws parameters, with no set of its resident at its time
    standing: its platform's set there was withdrawn already (a retry), or never recorded."""
    gone = [found for found in there if found["source_platform"] == row["source_platform"]]
    if gone:
        return Outcome("withdrawn", gone[-1]["id"], 200)
    return Outcome("unmatched", None, 200, [{
        "field": "status", "value": status,
        "reason": "no reading of this resident at this time is recorded from this platform; "
                  "nothing was withdrawn or stored"}])


def _refused(status: str, earlier: uuid.UUID, why: str) -> Outcome:
    return Outcome("rejected", None, 409, [{
        "field": "status", "value": status,
        "reason": f"amends a reading of set {earlier}, recorded for this resident at this "
                  f"time {why}; nothing was stored"}])


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
    return _as_set(row)


def _as_set(row: Any) -> dict[str, Any]:
    """A stored row as the set read back (soft signs as a list)."""
    out = dict(row)
    out["soft_signs"] = out["soft_signs"].split()
    return out
