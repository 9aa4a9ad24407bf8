"""The composed assessment: scale in force, flag reasons, rejection reasons (hand-written)."""

from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.domain.assessment import (
    ScaleSetting,
    assess,
    rejection_reasons,
    scale_in_force,
)
from services.scoring.domain.news2 import ClaimCheck, ImplausibleVitals, RiskBand, Vitals
from services.scoring.domain.softsigns import UnknownSoftSigns
from services.scoring.domain.trend import FlagReason, ScoredObservation, TrendReason

AT = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
NORMAL = Vitals(16, 97, False, 130, 70, "A", "37.0")
SET_2 = ScaleSetting(2, "dr-a", AT - 2 * H)
BACK_TO_1 = ScaleSetting(1, "dr-b", AT + H)


@pytest.mark.parametrize(("settings", "taken_at", "expected"), [
    ((), AT, None),
    ((SET_2,), AT - 3 * H, None),  # taken before the prescription
    ((SET_2,), AT - 2 * H, "dr-a"),  # at the instant it was set
    ((SET_2,), AT, "dr-a"),
    ((SET_2, BACK_TO_1), AT, "dr-a"),
    ((SET_2, BACK_TO_1), AT + 2 * H, None),  # reverted to scale 1
])
def test_scale_in_force(settings, taken_at, expected):
    got = scale_in_force(settings, taken_at)
    assert (got and got.set_by) == expected


def test_assess_normal_set_against_a_lower_history_and_a_matching_claim():
    a = assess(NORMAL, taken_at=AT, scale2=None, soft_sign_codes=(), claimed_total=0,
               history=[ScoredObservation(AT - H, 0, RiskBand.LOW)])
    assert (a.result.total, a.claim, a.flag_reasons, a.trend.reasons) == (
        0, ClaimCheck.MATCH, (), ())
    assert a.observed == ScoredObservation(AT, 0, RiskBand.LOW)


def test_assess_rise_of_3_flags_trend_only():
    rising = Vitals(21, 97, False, 130, 91, "A", "37.0")  # 2 + 1 = 3, low
    a = assess(rising, taken_at=AT, scale2=None, soft_sign_codes=(), claimed_total=None,
               history=[ScoredObservation(AT - 2 * H, 0, RiskBand.LOW),
                        ScoredObservation(AT + H, 5, RiskBand.MEDIUM)])
    assert a.trend.reasons == (TrendReason.TOTAL_ROSE,)
    assert a.flag_reasons == (FlagReason.TREND,)
    assert a.claim is ClaimCheck.NO_CLAIM


def test_assess_soft_signs_alone():
    a = assess(Vitals(), taken_at=AT, scale2=None, soft_sign_codes=("R2-PAIN",),
               claimed_total=None, history=())
    assert a.flag_reasons == (FlagReason.SOFT_SIGNS,)
    assert a.soft_signs.take_full_set is True and a.observed.total is None


def test_assess_refuses_what_it_cannot_trust():
    with pytest.raises(ImplausibleVitals):
        assess(Vitals(spo2=101), taken_at=AT, scale2=None, soft_sign_codes=(),
               claimed_total=None, history=())
    with pytest.raises(UnknownSoftSigns):
        assess(NORMAL, taken_at=AT, scale2=None, soft_sign_codes=("NOPE",), claimed_total=None,
               history=())


def test_rejection_reasons_lists_everything():
    assert rejection_reasons(Vitals(respiration_rate=0, spo2=101), ["R2-PAIN", "NOPE"]) == [
        {"field": "respiration_rate", "value": "0", "reason": "must be 1-80 after rounding"},
        {"field": "spo2", "value": "101", "reason": "must be 1-100 after rounding"},
        {"field": "soft_signs", "value": "NOPE", "reason": "unknown soft-sign code"},
    ]
