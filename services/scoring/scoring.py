"""Score a batch of ObservationRecorded events: the consumer's handler.

Invariants
- One row per observation in ``scoring_score`` (unique ``observation_id``): an observation
  already stored, or repeated inside the batch, is skipped and publishes nothing; so is one
  whose withdrawal came first (``withdrawals``): nothing was counted for it.
- Every scored observation publishes ``ScoreComputed``; one that needs attention also gets an
  open ``scoring_flag`` row and ``DeteriorationFlagged`` (flag id derived from the observation
  id, so the same observation can never raise two flags). All in the caller's transaction.
- Implausible values or unknown soft-sign codes are recorded as ``rejected`` with every reason
  and publish a ``ScoreComputed`` with status ``rejected`` and no score: they are never
  scored, and they never stop the consumer.
- Trend is by taken-at time (see ``history``). A reading that arrives after later ones is
  compared with its true predecessor; the later readings keep the flags they were given.
  A withdrawn score is no trend history for readings scored after its withdrawal; readings
  scored before it keep theirs (no re-scoring).
- Scale 2 only from the resident's recorded setting in force at taken-at; a device's scale
  claim is kept for audit and otherwise ignored.
- Hot path (about 5,000 observations/s is the target): events are encoded straight to JSON
  (``fast_encode``, the same bytes as the pydantic path) from values already validated, and
  every table is written with one statement per batch (``shared.dialect.insert_rows``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.domain.assessment import Assessment, assess, rejection_reasons, scale_in_force
from services.scoring.domain.news2 import ClaimCheck, ImplausibleVitals, SubScores, Vitals
from services.scoring.domain.softsigns import UnknownSoftSigns
from services.scoring.history import BatchContext, load_context
from services.scoring.models import FLAG, RESIDENT, SCORE, utc
from shared.dialect import insert_rows
from shared.events import DeteriorationFlagged, ObservationRecorded, ScoreComputed
from shared.events.envelope import Encoded, fast_encode
from shared.outbox import add_encoded, utcnow

SOURCE = "scoring"
FLAG_NAMESPACE = uuid.UUID("5b0f3c1e-2f7a-4c0e-9a57-3f1d2c4e8b61")
_FLAG_NAMESPACE_BYTES = FLAG_NAMESPACE.bytes


@dataclass
class _Writes:
    scores: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    events: dict[uuid.UUID, list[Encoded]] = field(default_factory=dict)


async def score_observations(session: AsyncSession, batch: Sequence[ObservationRecorded]) -> None:
    """Score a batch (in arrival order) and write scores, flags and events (flush only)."""
    first: dict[uuid.UUID, ObservationRecorded] = {}
    for o in batch:
        first.setdefault(o.observation_id, o)
    fresh = list(first.values())
    if not fresh:
        return
    taken = [utc(o.taken_at) for o in fresh]  # once per reading: the hot path reuses it
    ctx = await load_context(session, observation_ids=list(first),
                             residents={o.resident for o in fresh}, lo=min(taken), hi=max(taken))
    writes, now = _Writes(), utcnow()
    for obs, taken_at in zip(fresh, taken, strict=True):
        if obs.observation_id not in ctx.skip:
            _score_one(obs, taken_at, ctx, writes, now)
    await _write(session, writes, fresh, taken)


def _score_one(obs: ObservationRecorded, taken_at: datetime, ctx: BatchContext, w: _Writes,
               now: datetime) -> None:
    vitals = Vitals(obs.respiration_rate, obs.spo2, obs.on_oxygen, obs.systolic_bp, obs.pulse,
                    obs.consciousness, obs.temperature_c, "Cel")
    history, settings = ctx.history[obs.resident], ctx.scales.get(obs.resident)
    try:
        a = assess(vitals, taken_at=taken_at, soft_sign_codes=obs.soft_signs,
                   scale2=scale_in_force(settings, taken_at) if settings else None,
                   claimed_total=obs.client_news2_total, history=history)
    except (ImplausibleVitals, UnknownSoftSigns):
        row = _rejected(obs, now, taken_at, rejection_reasons(vitals, obs.soft_signs))
        w.scores.append(row)
        w.events[obs.observation_id] = [_score_event(obs, row, now)]
        return
    if a.result.total is not None:
        history.append(a.observed)
    flag_id = _flag_id(obs.observation_id) if a.flag_reasons else None
    w.scores.append(row := _scored(obs, now, taken_at, a, flag_id))
    events = w.events[obs.observation_id] = [_score_event(obs, row, now)]
    if flag_id is not None:
        w.flags.append(flag := _flag(obs, a, flag_id, now, taken_at))
        events.append(_flag_event(flag, obs, now))


def _flag_id(observation_id: uuid.UUID) -> uuid.UUID:
    """``uuid5(FLAG_NAMESPACE, str(observation_id))``, without re-deriving the namespace's
    bytes on every call (the same SHA-1 name-based UUID, bit for bit)."""
    digest = hashlib.sha1(_FLAG_NAMESPACE_BYTES + str(observation_id).encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _row(obs: ObservationRecorded, now: datetime, taken_at: datetime, **detail: Any
         ) -> dict[str, Any]:
    """The columns every score row shares; ``detail`` holds the vitals as received (decimals
    as strings), then ``sub_scores``, ``missing``, ``trend`` and ``rejection`` (in that order)."""
    vitals = {"respiration_rate": _text(obs.respiration_rate), "spo2": _text(obs.spo2),
              "on_oxygen": obs.on_oxygen, "systolic_bp": _text(obs.systolic_bp),
              "pulse": _text(obs.pulse), "consciousness": obs.consciousness,
              "temperature_c": _text(obs.temperature_c),
              "spo2_scale_claim": _text(obs.spo2_scale_claim)}
    return {"observation_id": obs.observation_id, "resident": obs.resident,
            "site_id": obs.site_id, "icb_code": obs.icb_code, "psc_code": obs.psc_code,
            "taken_at": taken_at, "received_at": utc(obs.received_at), "scored_at": now,
            "source_platform": obs.source_platform, "client_total": obs.client_news2_total,
            "detail": {"vitals": vitals, "sub_scores": detail["sub_scores"],
                       "missing": detail["missing"], "soft_signs": list(obs.soft_signs),
                       "trend": detail["trend"], "rejection": detail["rejection"]}}


def _rejected(obs: ObservationRecorded, now: datetime, taken_at: datetime,
              reasons: list[dict[str, str]]) -> dict[str, Any]:
    row = _row(obs, now, taken_at, sub_scores=None, missing=[], trend=[], rejection=reasons)
    row.update(status="rejected", scale=None, total=None, risk=None, red_score=False,
               monitoring=None, claim=None, claim_mismatch=False, flag_id=None)
    return row


def _scored(obs: ObservationRecorded, now: datetime, taken_at: datetime, a: Assessment,
            flag_id: uuid.UUID | None) -> dict[str, Any]:
    r = a.result
    row = _row(obs, now, taken_at,
               sub_scores={k: v for k, v in zip(SubScores._fields, r.sub_scores, strict=True)
                           if v is not None},
               missing=list(r.missing), trend=[str(t) for t in a.trend.reasons], rejection=None)
    row.update(status="scored", scale=int(r.scale), total=r.total,
               risk=r.risk and str(r.risk), red_score=r.red_score,
               monitoring=r.monitoring and str(r.monitoring), claim=str(a.claim),
               claim_mismatch=a.claim is ClaimCheck.MISMATCH, flag_id=flag_id)
    return row


def _score_event(obs: ObservationRecorded, row: dict[str, Any], now: datetime) -> Encoded:
    """ScoreComputed for a scored or rejected row, encoded directly: every value in it comes
    from a validated event or the scoring core (taken-at as received, like the pydantic path)."""
    detail = row["detail"]
    return fast_encode(ScoreComputed, {
        "observation_id": obs.observation_id, "resident": obs.resident, "site_id": obs.site_id,
        "icb_code": obs.icb_code, "psc_code": obs.psc_code, "taken_at": obs.taken_at,
        "scale": row["scale"], "sub_scores": detail["sub_scores"] or {},
        "missing": detail["missing"],
        "total": row["total"], "risk": row["risk"], "red_score": row["red_score"],
        "monitoring": row["monitoring"], "soft_signs": detail["soft_signs"],
        "client_total": row["client_total"], "claim_mismatch": row["claim_mismatch"],
        "status": row["status"], "rejection": detail["rejection"] or []},
        source=SOURCE, time=now)


def _flag(obs: ObservationRecorded, a: Assessment, flag_id: uuid.UUID, now: datetime,
          taken_at: datetime) -> dict[str, Any]:
    reasons = [str(x) for x in a.flag_reasons] + [str(t) for t in a.trend.reasons]
    return {"flag_id": flag_id, "observation_id": obs.observation_id, "resident": obs.resident,
            "site_id": obs.site_id, "icb_code": obs.icb_code, "psc_code": obs.psc_code,
            "taken_at": taken_at, "raised_at": now, "reasons": reasons,
            "total": a.result.total, "risk": a.result.risk and str(a.result.risk),
            "acknowledged_at": None, "acknowledged_by": None}


def _flag_event(flag: dict[str, Any], obs: ObservationRecorded, now: datetime) -> Encoded:
    """DeteriorationFlagged for a flag row, encoded directly (as ``_score_event``)."""
    return fast_encode(DeteriorationFlagged, {
        "flag_id": flag["flag_id"], "observation_id": obs.observation_id,
        "resident": obs.resident, "site_id": obs.site_id, "icb_code": obs.icb_code,
        "psc_code": obs.psc_code, "taken_at": obs.taken_at, "reasons": flag["reasons"],
        "total": flag["total"], "risk": flag["risk"]}, source=SOURCE, time=now)


async def _write(session: AsyncSession, w: _Writes, fresh: list[ObservationRecorded],
                 taken: list[datetime]) -> None:
    inserted = set(await insert_rows(session, SCORE, w.scores, ignore_conflicts=True,
                                     returning="observation_id"))
    await insert_rows(session, FLAG, [f for f in w.flags if f["observation_id"] in inserted])
    await _remember_residents(session, fresh, taken, inserted)
    await add_encoded(session, [e for oid, evs in w.events.items() if oid in inserted
                                for e in evs])


async def _remember_residents(session: AsyncSession, fresh: list[ObservationRecorded],
                              taken: list[datetime], inserted: set[uuid.UUID]) -> None:
    """Each resident's site as of their latest reading by taken-at (one row per resident),
    from the scores just stored: one stored before was remembered then, and a set withdrawn
    before it was scored is no reading of theirs."""
    latest: dict[str, dict[str, Any]] = {}
    for o, at in zip(fresh, taken, strict=True):
        if o.observation_id in inserted and (
                o.resident not in latest or latest[o.resident]["last_taken_at"] < at):
            latest[o.resident] = {"resident": o.resident, "site_id": o.site_id,
                                  "icb_code": o.icb_code, "psc_code": o.psc_code,
                                  "last_taken_at": at}
    await insert_rows(session, RESIDENT, list(latest.values()),
                      newer=(["resident"], "last_taken_at"))
