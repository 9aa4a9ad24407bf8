"""Deterioration trend rule and the escalation flag, pure.

Trend rule (``assess_trend``), for one resident:

1. The *previous* score is the latest complete score whose ``taken_at`` is strictly before the
   new one's ``taken_at``. Order is by taken-at time, never by arrival, so a late-arriving
   older reading is compared with what came before it, not with the newest. Incomplete sets
   (no total, no band) are skipped: they cannot be "previous". A reading at exactly the same
   instant is not previous either, so re-delivering the same reading never compares it with
   itself. If several readings share the latest instant, the lowest (band, then total) is used,
   which can only make a flag more likely. ``history`` holds standing scores only: a score
   whose observation set was withdrawn is left out (``services/scoring/history.py``), so a reading
   scored after the withdrawal is compared with the score before it. Readings assessed before
   the withdrawal keep their trend and flags: events are facts, nothing is re-assessed.
2. If the new score is incomplete, or there is no previous score, nothing fires.
3. ``BAND_ROSE`` fires when the new risk band is higher than the previous band, however old the
   previous score is.
4. ``TOTAL_ROSE`` fires when the new total is at least 2 above the previous total and the
   previous score was taken no more than 24 hours before (24 h 00 min exactly still counts).

``should_flag`` then lists why a new score needs attention: a band of low-medium or worse, soft
signs present, or a trend. For an incomplete set the known sub-scores are a lower bound on the
total (a missing parameter scores at least 0), so it is flagged when that lower bound already
reaches low-medium; it is never reported as low.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.scoring.domain.news2 import News2Result, RiskBand, risk_band

TOTAL_RISE = 2
TOTAL_RISE_WINDOW = timedelta(hours=24)


class TrendReason(StrEnum):
    BAND_ROSE = "risk band rose"
    TOTAL_ROSE = "total rose by 2 or more within 24 hours"


class FlagReason(StrEnum):
    RISK_BAND = "risk band low-medium or worse"
    INCOMPLETE_AT_LEAST_LOW_MEDIUM = "incomplete set already scores low-medium or worse"
    SOFT_SIGNS = "soft signs present"
    TREND = "deterioration trend"


@dataclass(frozen=True, slots=True)
class ScoredObservation:
    taken_at: datetime  # timezone-aware
    total: int | None  # None for an incomplete set
    risk: RiskBand | None

    def __post_init__(self) -> None:
        if self.taken_at.utcoffset() is None:
            raise ValueError("taken_at must be timezone-aware")
        if (self.total is None) != (self.risk is None):
            raise ValueError("total and risk are both set or both None")

    @classmethod
    def of(cls, taken_at: datetime, result: News2Result) -> ScoredObservation:
        return cls(taken_at, result.total, result.risk)


@dataclass(frozen=True, slots=True)
class TrendAssessment:
    previous: ScoredObservation | None  # the score compared with, if any
    reasons: tuple[TrendReason, ...]

    @property
    def fired(self) -> bool:
        return bool(self.reasons)


def previous_score(
    history: Iterable[ScoredObservation], new: ScoredObservation
) -> ScoredObservation | None:
    """The latest complete score taken strictly before ``new`` (rule 1); among several at that
    instant the first with the lowest (band, total). One pass: the consumer asks per reading."""
    before, best = new.taken_at, None
    for o in history:
        if o.risk is None or o.taken_at >= before:
            continue
        if best is None or o.taken_at > best.taken_at or (
                o.taken_at == best.taken_at
                and (o.risk.rank, o.total) < (best.risk.rank, best.total)):  # type: ignore[union-attr]
            best = o
    return best


def assess_trend(
    history: Iterable[ScoredObservation], new: ScoredObservation
) -> TrendAssessment:
    """Apply the trend rule in the module docstring to ``new`` against ``history``."""
    prev = previous_score(history, new)
    if prev is None or new.risk is None or new.total is None:
        return TrendAssessment(prev, ())
    assert prev.risk is not None and prev.total is not None
    reasons = []
    if new.risk.rank > prev.risk.rank:
        reasons.append(TrendReason.BAND_ROSE)
    recent = new.taken_at - prev.taken_at <= TOTAL_RISE_WINDOW
    if recent and new.total - prev.total >= TOTAL_RISE:
        reasons.append(TrendReason.TOTAL_ROSE)
    return TrendAssessment(prev, tuple(reasons))


def should_flag(
    result: News2Result, soft_signs_present: bool, trend_fired: bool
) -> list[FlagReason]:
    """Why this score needs attention; an empty list means no flag."""
    reasons = []
    if result.risk is not None:
        if result.risk is not RiskBand.LOW:
            reasons.append(FlagReason.RISK_BAND)
    elif _lower_bound_band(result) is not RiskBand.LOW:
        reasons.append(FlagReason.INCOMPLETE_AT_LEAST_LOW_MEDIUM)
    if soft_signs_present:
        reasons.append(FlagReason.SOFT_SIGNS)
    if trend_fired:
        reasons.append(FlagReason.TREND)
    return reasons


def _lower_bound_band(result: News2Result) -> RiskBand:
    known = sum(s for s in result.sub_scores if s is not None)
    return risk_band(known, result.red_score)
