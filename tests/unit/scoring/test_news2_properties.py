"""Properties of NEWS2 that must hold for every plausible input."""

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.news2 import (
    RiskBand,
    Scale2Setting,
    SpO2Scale,
    Vitals,
    score,
)

SETTING = Scale2Setting(set_by="Dr A. Clinician", set_at=datetime(2024, 1, 2, tzinfo=UTC))


def decimals(low: str, high: str, places: int = 3) -> st.SearchStrategy[Decimal]:
    return st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False,
                       allow_infinity=False)


def numbers(low: int, high: int) -> st.SearchStrategy[object]:
    """Plausible values in every accepted representation (the whole range rounds in bounds)."""
    exact = decimals(str(low), str(high))
    return st.one_of(st.integers(low, high), exact, exact.map(str), exact.map(float))


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


celsius = decimals("25", "45.04", places=4)
fahrenheit = decimals("77", "113.07", places=4)  # 25.0 .. 45.04 degC
temperatures = st.one_of(
    st.tuples(st.one_of(celsius, celsius.map(str), celsius.map(float)), st.just("Cel")),
    st.tuples(st.one_of(fahrenheit, fahrenheit.map(str)), st.just("[degF]")),
)


@st.composite
def vitals(draw, complete: bool = False) -> Vitals:
    pick = (lambda s: s) if complete else optional
    temperature, unit = draw(pick(temperatures)) or (None, "Cel")
    return Vitals(
        respiration_rate=draw(pick(numbers(1, 80))), spo2=draw(pick(numbers(1, 100))),
        on_oxygen=draw(pick(st.booleans())), systolic_bp=draw(pick(numbers(1, 300))),
        pulse=draw(pick(numbers(1, 300))), consciousness=draw(pick(st.sampled_from("ACVPU"))),
        temperature=temperature, temperature_unit=unit,
    )


def oracle_band(total: int, red: bool) -> RiskBand:
    """DOMAIN.md's rule, written out again independently of the code under test."""
    if total >= 7:
        return RiskBand.HIGH
    if total in (5, 6):
        return RiskBand.MEDIUM
    return RiskBand.LOW_MEDIUM if red else RiskBand.LOW


@given(vitals(), st.booleans())
def test_quantisation_never_raises_for_in_range_values(v, scale2):
    score(v, SETTING if scale2 else None)


@given(vitals(), st.booleans())
def test_total_is_the_sum_of_sub_scores_or_none_when_incomplete(v, scale2):
    result = score(v, SETTING if scale2 else None)
    if result.missing:
        assert result.total is None and result.risk is None and result.monitoring is None
    else:
        assert None not in result.sub_scores
        assert result.total == sum(result.sub_scores)
    assert result.red_score == (3 in result.sub_scores)


@given(vitals(complete=True), st.booleans())
def test_risk_band_is_a_function_of_total_and_red_flag_only(v, scale2):
    result = score(v, SETTING if scale2 else None)
    assert result.risk is oracle_band(result.total, result.red_score)


@given(st.integers(1, 100))
def test_scale2_never_scores_above_scale1_on_air(spo2):
    v = Vitals(spo2=spo2, on_oxygen=False)
    scale1, scale2 = score(v), score(v, SETTING)
    assert scale1.scale is SpO2Scale.SCALE_1 and scale2.scale is SpO2Scale.SCALE_2
    assert scale2.sub_scores.spo2 <= scale1.sub_scores.spo2


@given(decimals("25", "45", places=2))
def test_representation_does_not_change_the_score(d):
    as_decimal = score(Vitals(temperature=d)).sub_scores
    assert score(Vitals(temperature=str(d))).sub_scores == as_decimal
    assert score(Vitals(temperature=float(d))).sub_scores == as_decimal


@given(vitals(complete=True))
def test_complete_sets_score_between_0_and_20(v):
    assert 0 <= score(v).total <= 20
