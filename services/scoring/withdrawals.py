"""Take back the score of a withdrawn observation set: the consumer's ObservationSetWithdrawn
handler.

Invariants
- A stored score, scored or rejected, is withdrawn at most once: one ``UPDATE ... WHERE
  withdrawn_at IS NULL RETURNING`` decides, and only the withdrawal that made the change
  publishes. Its flag, if it raised one, is withdrawn with it (gone from open-flag lists,
  never acknowledged again). A second withdrawal of the set changes and publishes nothing.
- That withdrawal writes ONE ``ScoreWithdrawn``, repeating what the score's ``ScoreComputed``
  carried - resident, site, area codes, taken-at (in UTC), ``status``, ``total``, ``risk``,
  ``red_score``, ``claim_mismatch`` (all as stored from it) - and its ``flag_id``, so a
  consumer takes back exactly what it counted.
- A withdrawal of a set scoring never stored (its ObservationRecorded was dead-lettered, or
  has not come yet) is remembered in ``scoring_withdrawn_unscored``; the set is then never
  scored (``history.BatchContext.skip``). Nothing was counted, so nothing is published.
- Nothing is re-scored: readings already scored against the withdrawn score keep what they
  published; it only leaves the trend history of readings scored after it (``history``).
- All in the caller's transaction (flush only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import FLAG, SCORE, WITHDRAWN_UNSCORED, utc
from services.scoring.scoring import SOURCE
from shared.dialect import insert_rows
from shared.events import ObservationSetWithdrawn, ScoreWithdrawn
from shared.outbox import add_events

_COUNTED = (SCORE.c.resident, SCORE.c.site_id, SCORE.c.icb_code, SCORE.c.psc_code,
            SCORE.c.taken_at, SCORE.c.status, SCORE.c.total, SCORE.c.risk, SCORE.c.red_score,
            SCORE.c.claim_mismatch, SCORE.c.flag_id)


async def withdraw_observations(session: AsyncSession,
                                batch: Sequence[ObservationSetWithdrawn]) -> None:
    """Withdraw each set's score (in arrival order) and write its ScoreWithdrawn."""
    events = []
    for withdrawal in batch:
        score = await _withdraw_score(session, withdrawal)
        if score is not None:
            events.append(_score_withdrawn(score, withdrawal))
        elif not await _stored(session, withdrawal):
            await _remember(session, withdrawal)
    await add_events(session, events, source=SOURCE)


async def _withdraw_score(session: AsyncSession, w: ObservationSetWithdrawn) -> Any:
    """The score's counted columns if this withdrawal withdrew it (and its flag), else None."""
    at = utc(w.withdrawn_at)
    score = (await session.execute(
        update(SCORE).where(SCORE.c.observation_id == w.observation_id,
                            SCORE.c.withdrawn_at.is_(None))
        .values(withdrawn_at=at, withdrawal_reason=w.reason, replaced_by=w.replaced_by)
        .returning(*_COUNTED))).first()
    if score is not None and score.flag_id is not None:
        await session.execute(update(FLAG).where(FLAG.c.flag_id == score.flag_id,
                                                 FLAG.c.withdrawn_at.is_(None))
                              .values(withdrawn_at=at))
    return score


async def _stored(session: AsyncSession, w: ObservationSetWithdrawn) -> bool:
    found = await session.execute(select(SCORE.c.observation_id)
                                  .where(SCORE.c.observation_id == w.observation_id))
    return found.first() is not None


async def _remember(session: AsyncSession, w: ObservationSetWithdrawn) -> None:
    """Note a withdrawal that came before its set was scored (a repeat changes nothing)."""
    await insert_rows(session, WITHDRAWN_UNSCORED, [{
        "observation_id": w.observation_id, "resident": w.resident,
        "taken_at": utc(w.taken_at), "withdrawn_at": utc(w.withdrawn_at), "reason": w.reason,
        "replaced_by": w.replaced_by}], ignore_conflicts=True)


def _score_withdrawn(score: Any, w: ObservationSetWithdrawn) -> ScoreWithdrawn:
    """ScoreWithdrawn for a stored score's counted columns (``_COUNTED``) and its withdrawal."""
    return ScoreWithdrawn(
        observation_id=w.observation_id, resident=score.resident, site_id=score.site_id,
        icb_code=score.icb_code, psc_code=score.psc_code, taken_at=utc(score.taken_at),
        withdrawn_at=w.withdrawn_at, reason=w.reason, replaced_by=w.replaced_by,
        status=score.status, total=score.total, risk=score.risk, red_score=score.red_score,
        claim_mismatch=score.claim_mismatch, flag_id=score.flag_id)
