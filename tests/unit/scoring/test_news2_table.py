"""NEWS2 against hand-written tables (RCP 2017 chart in DOMAIN.md). No expected value here is
computed by the code under test."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, localcontext

import pytest

from services.scoring.domain.news2 import (
    DEFAULT_WORDING,
    ClaimCheck,
    ImplausibleValue,
    ImplausibleVitals,
    Monitoring,
    RiskBand,
    Scale2Setting,
    SpO2Scale,
    SubScores,
    Vitals,
    compare_claim,
    response_text,
    score,
    validate,
)

SETTING = Scale2Setting(set_by="Dr A. Clinician (GP)", set_at=datetime(2024, 1, 2, 9, tzinfo=UTC))
# Every parameter scores 0 here: RR 16, SpO2 97 on air, SBP 120, pulse 70, Alert, 37.0 degC.
NORMAL = Vitals(respiration_rate=16, spo2=97, on_oxygen=False, systolic_bp=120, pulse=70,
                consciousness="A", temperature=Decimal("37.0"))


def sub(vitals: Vitals, field: str, scale2: Scale2Setting | None = None) -> int | None:
    return getattr(score(vitals, scale2).sub_scores, field)


# --- every boundary, both sides ---------------------------------------------------------------

@pytest.mark.parametrize(("rr", "expected"), [
    (1, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (80, 3),
])
def test_respiration_rate_boundaries(rr, expected):
    result = score(replace(NORMAL, respiration_rate=rr))
    assert result.sub_scores.respiration_rate == expected
    assert result.total == expected


@pytest.mark.parametrize(("spo2", "expected"), [
    (1, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0),
])
def test_spo2_scale1_boundaries_on_air(spo2, expected):
    result = score(replace(NORMAL, spo2=spo2))
    assert result.sub_scores.spo2 == expected
    assert result.total == expected
    assert result.scale is SpO2Scale.SCALE_1


@pytest.mark.parametrize(("spo2", "expected"), [(91, 3), (92, 2), (94, 1), (96, 0), (100, 0)])
def test_spo2_scale1_ignores_oxygen_for_the_spo2_row(spo2, expected):
    result = score(replace(NORMAL, spo2=spo2, on_oxygen=True))
    assert result.sub_scores.spo2 == expected
    assert result.sub_scores.air_or_oxygen == 2
    assert result.total == expected + 2


@pytest.mark.parametrize(("spo2", "on_oxygen", "expected"), [
    (1, False, 3), (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1),
    (87, False, 1), (88, False, 0), (92, False, 0), (93, False, 0), (97, False, 0),
    (100, False, 0),
    (83, True, 3), (84, True, 2), (85, True, 2), (86, True, 1), (87, True, 1), (88, True, 0),
    (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3),
    (100, True, 3),
])
def test_spo2_scale2_boundaries(spo2, on_oxygen, expected):
    result = score(replace(NORMAL, spo2=spo2, on_oxygen=on_oxygen), SETTING)
    assert result.scale is SpO2Scale.SCALE_2
    assert result.sub_scores.spo2 == expected
    assert result.total == expected + (2 if on_oxygen else 0)


@pytest.mark.parametrize(("on_oxygen", "expected"), [(False, 0), (True, 2)])
def test_air_or_oxygen(on_oxygen, expected):
    result = score(replace(NORMAL, on_oxygen=on_oxygen))
    assert result.sub_scores.air_or_oxygen == expected
    assert result.total == expected


@pytest.mark.parametrize(("sbp", "expected"), [
    (1, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3),
    (300, 3),
])
def test_systolic_boundaries(sbp, expected):
    result = score(replace(NORMAL, systolic_bp=sbp))
    assert result.sub_scores.systolic_bp == expected
    assert result.total == expected


@pytest.mark.parametrize(("pulse", "expected"), [
    (1, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
    (131, 3), (300, 3),
])
def test_pulse_boundaries(pulse, expected):
    result = score(replace(NORMAL, pulse=pulse))
    assert result.sub_scores.pulse == expected
    assert result.total == expected


@pytest.mark.parametrize(("acvpu", "expected"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_consciousness(acvpu, expected):
    result = score(replace(NORMAL, consciousness=acvpu))
    assert result.sub_scores.consciousness == expected
    assert result.red_score is (expected == 3)


@pytest.mark.parametrize(("temp", "expected"), [
    ("25.0", 3), ("35.0", 3), ("35.1", 1), ("36.0", 1), ("36.1", 0), ("38.0", 0), ("38.1", 1),
    ("39.0", 1), ("39.1", 2), ("45.0", 2),
])
def test_temperature_boundaries(temp, expected):
    result = score(replace(NORMAL, temperature=Decimal(temp)))
    assert result.sub_scores.temperature == expected
    assert result.total == expected


# --- quantisation -------------------------------------------------------------------------------

@pytest.mark.parametrize(("temp", "expected"), [
    (35.05, 1), (36.05, 0), (38.05, 1), (39.05, 2), (36.04, 1), (35.04, 3), (38.04, 0),
    ("35.05", 1), ("36.05", 0), ("38.05", 1), ("39.05", 2), ("36.04", 1),
    (Decimal("35.05"), 1), (Decimal("39.05"), 2), (Decimal("35.049999"), 3), (37, 0), (35, 3),
])
def test_temperature_quantised_half_up_to_tenths(temp, expected):
    assert sub(replace(NORMAL, temperature=temp), "temperature") == expected


def test_binary_float_rounding_pitfall_is_avoided():
    assert round(35.05, 1) == 35.0  # the trap: this would score 3
    assert sub(replace(NORMAL, temperature=35.05), "temperature") == 1


def test_callers_decimal_context_does_not_change_scores():
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = 2, ROUND_DOWN
        assert sub(replace(NORMAL, temperature="35.05"), "temperature") == 1
        assert sub(replace(NORMAL, temperature="102.4", temperature_unit="[degF]"),
                   "temperature") == 2


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("respiration_rate", 8.5, 1), ("respiration_rate", "8.49", 3), ("respiration_rate", 20.5, 2),
    ("respiration_rate", Decimal("11.5"), 0), ("spo2", 95.5, 0), ("spo2", "91.5", 2),
    ("systolic_bp", "90.5", 2), ("systolic_bp", 219.5, 3), ("pulse", "40.5", 1),
    ("pulse", 130.49, 2),
])
def test_whole_number_parameters_quantised_half_up(field, value, expected):
    assert sub(replace(NORMAL, **{field: value}), field) == expected


@pytest.mark.parametrize(("fahrenheit", "expected"), [
    (98.6, 0),      # 37.0
    (95, 3),        # 35.0
    (100.4, 0),     # 38.0
    (102.4, 2),     # 39.111.. -> 39.1
    ("95.09", 1),   # exactly 35.05 -> 35.1
    (96.8, 1),      # 36.0
    (96.9, 0),      # 36.0555.. -> 36.1
    (100.58, 1),    # exactly 38.1
    (102.2, 1),     # 39.0
])
def test_fahrenheit_converted_to_celsius_before_quantising(fahrenheit, expected):
    vitals = replace(NORMAL, temperature=fahrenheit, temperature_unit="[degF]")
    assert sub(vitals, "temperature") == expected


# --- bands and monitoring -----------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "subs", "total", "risk", "red", "watch"), [
    ({}, (0, 0, 0, 0, 0, 0, 0), 0, RiskBand.LOW, False, Monitoring.MIN_12_HOURLY),
    ({"temperature": "35.5"}, (0, 0, 0, 0, 0, 0, 1), 1, RiskBand.LOW, False,
     Monitoring.MIN_4_6_HOURLY),
    ({"respiration_rate": 10, "systolic_bp": 105, "pulse": 45}, (1, 0, 0, 1, 1, 0, 0), 3,
     RiskBand.LOW, False, Monitoring.MIN_4_6_HOURLY),
    ({"respiration_rate": 25}, (3, 0, 0, 0, 0, 0, 0), 3, RiskBand.LOW_MEDIUM, True,
     Monitoring.MIN_HOURLY),
    ({"respiration_rate": 21, "spo2": 93}, (2, 2, 0, 0, 0, 0, 0), 4, RiskBand.LOW, False,
     Monitoring.MIN_4_6_HOURLY),
    ({"respiration_rate": 6, "pulse": 95}, (3, 0, 0, 0, 1, 0, 0), 4, RiskBand.LOW_MEDIUM, True,
     Monitoring.MIN_HOURLY),
    ({"respiration_rate": 21, "spo2": 92, "pulse": 91}, (2, 2, 0, 0, 1, 0, 0), 5,
     RiskBand.MEDIUM, False, Monitoring.MIN_HOURLY),
    ({"consciousness": "C", "systolic_bp": 95, "temperature": "38.5"}, (0, 0, 0, 2, 0, 3, 1), 6,
     RiskBand.MEDIUM, True, Monitoring.MIN_HOURLY),
    ({"on_oxygen": True, "spo2": 94, "respiration_rate": 25, "pulse": 95},
     (3, 1, 2, 0, 1, 0, 0), 7, RiskBand.HIGH, True, Monitoring.CONTINUOUS),
    ({"on_oxygen": True, "spo2": 95, "respiration_rate": 22, "pulse": 115, "temperature": 39.5},
     (2, 1, 2, 0, 2, 0, 2), 9, RiskBand.HIGH, False, Monitoring.CONTINUOUS),
    ({"respiration_rate": 6, "spo2": 85, "on_oxygen": True, "systolic_bp": 85, "pulse": 35,
      "consciousness": "U", "temperature": "34.0"}, (3, 3, 2, 3, 3, 3, 3), 20, RiskBand.HIGH,
     True, Monitoring.CONTINUOUS),
])
def test_band_edges_with_full_sets(changes, subs, total, risk, red, watch):
    result = score(replace(NORMAL, **changes))
    assert result.sub_scores == SubScores(*subs)
    assert (result.total, result.risk, result.red_score, result.monitoring) == (
        total, risk, red, watch)
    assert result.missing == ()


# --- plausibility -------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "parameter"), [
    ({"spo2": 101}, "spo2"), ({"spo2": "100.5"}, "spo2"), ({"spo2": 0}, "spo2"),
    ({"spo2": -3}, "spo2"), ({"respiration_rate": 0}, "respiration_rate"),
    ({"respiration_rate": -1}, "respiration_rate"), ({"respiration_rate": 81}, "respiration_rate"),
    ({"respiration_rate": 0.4}, "respiration_rate"), ({"pulse": 0}, "pulse"),
    ({"pulse": 301}, "pulse"), ({"systolic_bp": 0}, "systolic_bp"),
    ({"systolic_bp": 301}, "systolic_bp"), ({"temperature": 24.9}, "temperature"),
    ({"temperature": "45.1"}, "temperature"), ({"temperature": 0}, "temperature"),
    ({"temperature": 76, "temperature_unit": "[degF]"}, "temperature"),      # 24.4 degC
    ({"temperature": 113.5, "temperature_unit": "[degF]"}, "temperature"),   # 45.3 degC
    ({"temperature": 37, "temperature_unit": "K"}, "temperature_unit"),
    ({"pulse": "abc"}, "pulse"), ({"pulse": float("nan")}, "pulse"),
    ({"spo2": "Infinity"}, "spo2"), ({"respiration_rate": True}, "respiration_rate"),
    ({"systolic_bp": Decimal("1e40")}, "systolic_bp"), ({"temperature": "1e60"}, "temperature"),
    ({"consciousness": "X"}, "consciousness"), ({"consciousness": "a"}, "consciousness"),
    ({"on_oxygen": "yes"}, "on_oxygen"), ({"on_oxygen": 1}, "on_oxygen"),
])
def test_implausible_value_rejected_naming_the_parameter(changes, parameter):
    vitals = replace(NORMAL, **changes)
    with pytest.raises(ImplausibleVitals) as caught:
        score(vitals)
    assert [e.parameter for e in caught.value.errors] == [parameter]
    assert parameter in str(caught.value)
    assert [e.parameter for e in validate(vitals)] == [parameter]


@pytest.mark.parametrize(("changes", "field", "expected"), [
    ({"spo2": 100}, "spo2", 0), ({"spo2": "100.4"}, "spo2", 0),
    ({"respiration_rate": 80}, "respiration_rate", 3),
    ({"pulse": 300}, "pulse", 3), ({"systolic_bp": 300}, "systolic_bp", 3),
    ({"temperature": "24.95"}, "temperature", 3), ({"temperature": "45.04"}, "temperature", 2),
    ({"temperature": 113, "temperature_unit": "[degF]"}, "temperature", 2),  # 45.0 degC
])
def test_plausibility_limits_apply_to_the_rounded_value(changes, field, expected):
    assert sub(replace(NORMAL, **changes), field) == expected


def test_all_implausible_values_reported_at_once_in_chart_order():
    vitals = Vitals(respiration_rate=0, spo2=101, on_oxygen="no", systolic_bp=-5, pulse=400,
                    consciousness="Z", temperature=50)
    with pytest.raises(ImplausibleVitals) as caught:
        score(vitals)
    assert [e.parameter for e in caught.value.errors] == [
        "respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness",
        "temperature"]
    assert caught.value.errors[1] == ImplausibleValue("spo2", 101, "must be 1-100 after rounding")


def test_validate_returns_empty_list_for_plausible_or_missing():
    assert validate(NORMAL) == []
    assert validate(Vitals()) == []


# --- missing parameters -------------------------------------------------------------------------

def test_empty_vitals_lists_every_parameter_missing_in_chart_order():
    result = score(Vitals())
    assert result.missing == ("respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse",
                              "consciousness", "temperature")
    assert (result.total, result.risk, result.monitoring) == (None, None, None)
    assert result.sub_scores == SubScores(None, None, None, None, None, None, None)


def test_missing_pulse_no_total_other_sub_scores_reported():
    result = score(replace(NORMAL, pulse=None, respiration_rate=25, temperature="38.5"))
    assert result.missing == ("pulse",)
    assert result.total is None and result.risk is None and result.monitoring is None
    assert result.sub_scores == SubScores(3, 0, 0, 0, None, 0, 1)
    assert result.red_score is True


def test_missing_pulse_and_temperature():
    result = score(replace(NORMAL, temperature=None, pulse=None))
    assert result.missing == ("pulse", "temperature")
    assert result.total is None


def test_missing_oxygen_on_scale2_leaves_high_spo2_unscored():
    result = score(replace(NORMAL, spo2=95, on_oxygen=None), SETTING)
    assert result.missing == ("on_oxygen",)
    assert result.sub_scores.spo2 is None
    assert result.total is None


def test_missing_oxygen_on_scale2_low_spo2_still_scored():
    result = score(replace(NORMAL, spo2=85, on_oxygen=None), SETTING)
    assert result.sub_scores.spo2 == 2
    assert result.missing == ("on_oxygen",)


def test_missing_oxygen_on_scale1_spo2_still_scored():
    result = score(replace(NORMAL, spo2=93, on_oxygen=None))
    assert result.sub_scores.spo2 == 2
    assert result.sub_scores.air_or_oxygen is None
    assert result.missing == ("on_oxygen",)


# --- scale 2 only with a recorded setting ------------------------------------------------------

def test_scale1_is_the_default():
    result = score(replace(NORMAL, spo2=89))
    assert result.scale is SpO2Scale.SCALE_1
    assert result.sub_scores.spo2 == 3


def test_scale2_used_only_with_a_setting():
    result = score(replace(NORMAL, spo2=89), SETTING)
    assert result.scale is SpO2Scale.SCALE_2
    assert result.sub_scores.spo2 == 0
    assert score(replace(NORMAL, spo2=89), None).scale is SpO2Scale.SCALE_1


@pytest.mark.parametrize(("set_by", "set_at"), [
    ("", datetime(2024, 1, 2, tzinfo=UTC)), ("  ", datetime(2024, 1, 2, tzinfo=UTC)),
    ("Dr B", datetime(2024, 1, 2)),
])
def test_scale2_setting_needs_who_and_an_aware_when(set_by, set_at):
    with pytest.raises(ValueError):
        Scale2Setting(set_by=set_by, set_at=set_at)


# --- client claims and response text ------------------------------------------------------------

def test_nhs_fhir_example_quirk_37_5_scores_0_and_a_claim_of_1_is_a_mismatch():
    result = score(replace(NORMAL, temperature=37.5))
    assert result.sub_scores.temperature == 0
    assert result.total == 0
    assert compare_claim(result, 1) is ClaimCheck.MISMATCH
    assert compare_claim(result, 0) is ClaimCheck.MATCH


@pytest.mark.parametrize(("vitals", "claim", "expected"), [
    (NORMAL, None, ClaimCheck.NO_CLAIM),
    (Vitals(pulse=70), None, ClaimCheck.NO_CLAIM),
    (Vitals(pulse=70), 0, ClaimCheck.INCOMPLETE),
    (replace(NORMAL, respiration_rate=25), 3, ClaimCheck.MATCH),
    (replace(NORMAL, respiration_rate=25), 2, ClaimCheck.MISMATCH),
    (replace(NORMAL, respiration_rate=25), -3, ClaimCheck.MISMATCH),
    (NORMAL, False, ClaimCheck.MISMATCH),  # a bool is not a total
])
def test_compare_claim(vitals, claim, expected):
    assert compare_claim(score(vitals), claim) is expected


@pytest.mark.parametrize(("changes", "band"), [
    ({}, RiskBand.LOW), ({"respiration_rate": 25}, RiskBand.LOW_MEDIUM),
    ({"respiration_rate": 21, "spo2": 92, "pulse": 91}, RiskBand.MEDIUM),
    ({"respiration_rate": 25, "spo2": 91, "pulse": 95}, RiskBand.HIGH),
])
def test_response_text_uses_area_wording_for_the_band(changes, band):
    area = {RiskBand.LOW: "low text", RiskBand.LOW_MEDIUM: "low-medium text",
            RiskBand.MEDIUM: "medium text", RiskBand.HIGH: "high text"}
    result = score(replace(NORMAL, **changes))
    assert response_text(result, area) == area[band]
    assert response_text(result) == DEFAULT_WORDING[band]


def test_default_wording_escalates_high_to_999():
    assert "999" in DEFAULT_WORDING[RiskBand.HIGH]
    assert set(DEFAULT_WORDING) == set(RiskBand)


def test_response_text_for_incomplete_set_names_missing_and_never_reassures():
    text = response_text(score(replace(NORMAL, pulse=None)), DEFAULT_WORDING)
    assert "pulse" in text
    assert "Low risk" not in text
