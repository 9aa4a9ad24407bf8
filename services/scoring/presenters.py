"""Stored rows and pure results as API shapes; the response text uses the area's wording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.scoring.domain.news2 import (
    DEFAULT_WORDING,
    Monitoring,
    News2Result,
    RiskBand,
    SpO2Scale,
    SubScores,
    response_text,
)
from services.scoring.models import utc
from services.scoring.schemas import FlagOut, News2Out, ScoreOut, WithdrawalOut


def wording_from(setting: Mapping[str, str]) -> dict[RiskBand, str]:
    """The default wording with the area's overrides (bands validated by the settings)."""
    return {**DEFAULT_WORDING, **{RiskBand(band): text for band, text in setting.items()}}


def news2_out(result: News2Result, wording: Mapping[RiskBand, str]) -> News2Out:
    subs = {k: v for k, v in result.sub_scores._asdict().items() if v is not None}
    return News2Out(scale=int(result.scale), sub_scores=subs, total=result.total,
                    risk=result.risk and str(result.risk), red_score=result.red_score,
                    monitoring=result.monitoring and str(result.monitoring),
                    missing=list(result.missing), response=response_text(result, wording))


def _result_of(row: Any) -> News2Result:
    subs = SubScores(**{k: row.detail["sub_scores"].get(k) for k in SubScores._fields})
    return News2Result(subs, row.total, row.risk and RiskBand(row.risk), row.red_score,
                       row.monitoring and Monitoring(row.monitoring), SpO2Scale(row.scale),
                       tuple(row.detail["missing"]))


def score_out(row: Any, wording: Mapping[RiskBand, str]) -> ScoreOut:
    scored, d = row.status == "scored", row.detail
    return ScoreOut(
        observation_id=row.observation_id, taken_at=utc(row.taken_at),
        received_at=utc(row.received_at), site_id=row.site_id, status=row.status,
        scale=row.scale, sub_scores=d["sub_scores"], total=row.total, risk=row.risk,
        red_score=row.red_score, monitoring=row.monitoring, missing=d["missing"],
        response=response_text(_result_of(row), wording) if scored else None,
        soft_signs=d["soft_signs"], client_total=row.client_total, claim=row.claim,
        claim_mismatch=row.claim_mismatch, trend=d["trend"], flag_id=row.flag_id,
        rejection=d["rejection"], vitals=d["vitals"], withdrawal=withdrawal_out(row))


def flag_out(row: Any) -> FlagOut:
    """A flag row joined with its score's withdrawal columns (``flags.FLAG_WITH_WITHDRAWAL``)."""
    return FlagOut(
        flag_id=row.flag_id, observation_id=row.observation_id, resident=row.resident,
        site_id=row.site_id, taken_at=utc(row.taken_at), raised_at=utc(row.raised_at),
        reasons=row.reasons, total=row.total, risk=row.risk,
        acknowledged_at=row.acknowledged_at and utc(row.acknowledged_at),
        acknowledged_by=row.acknowledged_by, withdrawal=withdrawal_out(row))


def withdrawal_out(row: Any) -> WithdrawalOut | None:
    """The withdrawal a score row (or a flag row with its score's columns) records, if any."""
    if row.withdrawn_at is None:
        return None
    return WithdrawalOut(withdrawn_at=utc(row.withdrawn_at), reason=row.withdrawal_reason,
                         replaced_by=row.replaced_by)
