"""One observation's full clinical assessment, composed from the pure rules (no I/O).

``assess`` scores the vitals, evaluates the soft signs, applies the trend rule against the
resident's history, checks the client's claimed total and decides whether to flag. It raises
``ImplausibleVitals`` or ``UnknownSoftSigns`` instead of scoring anything it cannot trust;
``rejection_reasons`` lists every such problem at once, for the record.

``scale_in_force`` picks the resident's SpO2 scale setting for one reading: the latest
recorded setting made at or before the reading was taken. A reading taken before a clinician
prescribed scale 2 is scored on scale 1, because that is the prescription it was taken under.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.scoring.domain import news2, softsigns, trend
from services.scoring.domain.news2 import ClaimCheck, News2Result, Scale2Setting, Vitals
from services.scoring.domain.softsigns import SoftSignAssessment
from services.scoring.domain.trend import FlagReason, ScoredObservation, TrendAssessment


@dataclass(frozen=True, slots=True)
class ScaleSetting:
    """One recorded change of a resident's SpO2 scale (1 reverts to the default)."""

    scale: int
    set_by: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class Assessment:
    observed: ScoredObservation  # what later readings compare with
    result: News2Result
    soft_signs: SoftSignAssessment
    trend: TrendAssessment
    claim: ClaimCheck
    flag_reasons: tuple[FlagReason, ...]


def scale_in_force(settings: Sequence[ScaleSetting], taken_at: datetime) -> Scale2Setting | None:
    """The Scale2Setting in force when ``taken_at``, or None for scale 1 (settings by set_at)."""
    current = None
    for s in settings:
        if s.set_at <= taken_at:
            current = s
    if current is None or current.scale != 2:
        return None
    return Scale2Setting(current.set_by, current.set_at)


def assess(vitals: Vitals, *, taken_at: datetime, scale2: Scale2Setting | None,
           soft_sign_codes: Iterable[str], claimed_total: int | None,
           history: Iterable[ScoredObservation]) -> Assessment:
    """Assess one observation; raises rather than score implausible or unknown input."""
    result = news2.score(vitals, scale2)
    signs = softsigns.evaluate(soft_sign_codes, has_full_news2_set=result.total is not None)
    new = ScoredObservation.of(taken_at, result)
    trend_assessment = trend.assess_trend(history, new)
    reasons = trend.should_flag(result, signs.present, trend_assessment.fired)
    return Assessment(new, result, signs, trend_assessment,
                      news2.compare_claim(result, claimed_total), tuple(reasons))


def rejection_reasons(vitals: Vitals, soft_sign_codes: Iterable[str]) -> list[dict[str, str]]:
    """Every reason not to score this observation: implausible values, unknown soft signs."""
    reasons = [{"field": e.parameter, "value": str(e.value), "reason": e.rule}
               for e in news2.validate(vitals)]
    reasons += [{"field": "soft_signs", "value": code, "reason": "unknown soft-sign code"}
                for code in softsigns.unknown_codes(soft_sign_codes)]
    return reasons
