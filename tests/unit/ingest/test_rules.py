"""Ingest's pure validation rules: tables with hand-written expected values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from services.ingest.domain import rules
from services.ingest.domain.softsign_codes import SOFT_SIGN_CODES
from services.ingest.validation import decimal_text

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("fahrenheit", "celsius"), [
    (D("98.6"), D("37")), (D("32"), D("0")), (D("212"), D("100")), (D("99.5"), D("37.5")),
    (D("95"), D("35")), (D("100.4"), D("38")),
])
def test_fahrenheit_to_celsius(fahrenheit, celsius):
    assert rules.fahrenheit_to_celsius(fahrenheit) == celsius


@pytest.mark.parametrize(("values", "errors"), [
    ({"spo2": D("100")}, []),
    ({"spo2": D("100.1")}, [("spo2", "must be between 40 and 100")]),
    ({"respiration_rate": D("0")}, [("respiration_rate", "must be between 1 and 80")]),
    ({"pulse": D("250")}, []),
    ({"pulse": D("251")}, [("pulse", "must be between 20 and 250")]),
    ({"systolic_bp": D("39")}, [("systolic_bp", "must be between 40 and 300")]),
    ({"temperature_c": D("24.9")}, [("temperature_c", "must be between 25 and 45")]),
    ({"temperature_c": D("45")}, []),
    ({"consciousness": "X"}, [("consciousness", "must be one of A, C, V, P, U")]),
    ({"consciousness": "C", "on_oxygen": True}, []),
])
def test_check_values(values, errors):
    assert [(e.field, e.reason) for e in rules.check_values(values)] == errors


@pytest.mark.parametrize(("taken_at", "reason"), [
    (datetime(2026, 11, 22, 12, 5, tzinfo=UTC), None),
    (datetime(2026, 11, 22, 12, 5, 1, tzinfo=UTC), "more than 5 minutes in the future"),
    (datetime(2026, 10, 23, 12, 0, tzinfo=UTC), None),
    (datetime(2026, 10, 23, 11, 59, tzinfo=UTC), "older than 30 days"),
])
def test_check_taken_at(taken_at, reason):
    errors = rules.check_taken_at(taken_at, NOW, max_future_minutes=5, max_age_days=30)
    assert [e.reason for e in errors] == ([reason] if reason else [])


@pytest.mark.parametrize(("closed_on", "taken_at", "closed"), [
    (None, datetime(2026, 11, 22, 12, tzinfo=UTC), False),
    (date(2026, 11, 22), datetime(2026, 11, 22, 0, 0, tzinfo=UTC), True),
    (date(2026, 11, 22), datetime(2026, 11, 21, 23, 59, tzinfo=UTC), False),
    # 23:30Z on 30 June is already 1 July in London (BST)
    (date(2026, 7, 1), datetime(2026, 6, 30, 23, 30, tzinfo=UTC), True),
])
def test_check_site_open(closed_on, taken_at, closed):
    assert bool(rules.check_site_open("1-1", closed_on, taken_at)) is closed


def test_soft_signs_and_empty_sets():
    assert rules.check_soft_signs(("R2-PAIN", "SW-T2")) == []
    (err,) = rules.check_soft_signs(("R2-PAIN", "r2-pain"))
    assert (err.field, err.value, err.reason) == ("soft_signs.1", "r2-pain",
                                                  "not a known soft-sign code")
    assert len(SOFT_SIGN_CODES) == 21
    assert rules.check_not_empty({}, ("R2-PAIN",)) == []
    assert rules.check_not_empty({"on_oxygen": False}, ()) == []
    assert rules.check_not_empty({"spo2": None}, ())[0].field == "body"


@pytest.mark.parametrize(("value", "text"), [
    (D("36.50"), "36.5"), (D("100"), "100"), (D("1E+2"), "100"), (D("-0.0"), "0"),
    (D("37.777777"), "37.777777"),
])
def test_decimal_text_has_one_spelling(value, text):
    assert decimal_text(value) == text
