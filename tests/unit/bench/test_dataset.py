"""The national data set: exact total, per-PSC bounds, determinism, and its building blocks."""

from __future__ import annotations

from datetime import date

import pytest

from bench.dataset import (
    PSC_MAX,
    PSC_MIN,
    TOTAL_HOMES,
    generate,
    load_icbs,
    psc_counts,
    quarter_start,
    split,
)
from bench.payloads import nhs_number


@pytest.fixture(scope="module")
def data():
    return generate(load_icbs())


def test_real_reference_data():
    icbs = load_icbs()
    assert len(icbs) == 42
    assert len({i.psc_code for i in icbs}) == 15


def test_total_and_per_psc_bounds(data):
    per_psc = data.per_psc()
    assert len(data.homes) == TOTAL_HOMES == 15_140
    assert sum(per_psc.values()) == 15_140
    assert len(per_psc) == 15
    assert min(per_psc.values()) == 263
    assert max(per_psc.values()) == 1_679
    assert all(PSC_MIN <= n <= PSC_MAX for n in per_psc.values())


def test_homes_are_unique_real_icbs_and_about_thirty_residents(data):
    codes = {i.ods_code for i in load_icbs()}
    assert len({h.site_id for h in data.homes}) == 15_140
    assert {h.icb_code for h in data.homes} == codes  # every ICB has homes
    mean = sum(h.residents for h in data.homes) / len(data.homes)
    assert 29 <= mean <= 31
    assert all(h.site_id.startswith("1-") and len(h.site_id) == 12 for h in data.homes)


def test_eight_quarters_of_history_per_home(data):
    assert len(data.stages) == 8 * 15_140
    assert {s.quarter for s in data.stages} == set(range(8))
    assert all(0 <= s.stage <= 7 for s in data.stages)
    assert all(quarter_start(s.quarter) <= s.applies_from for s in data.stages)


def test_deterministic(data):
    again = generate(load_icbs())
    assert again.homes == data.homes and again.stages == data.stages
    assert generate(load_icbs(), seed=1).homes != data.homes


def test_split_largest_remainder():
    assert split(10, [1, 1, 1]) == [4, 3, 3]
    assert split(7, [2, 1, 1]) == [3, 2, 2]   # 3.5, 1.75, 1.75 -> 3,1,1, +1 to both .75s
    assert sum(split(15_140, [3.3, 1.1, 7.9])) == 15_140


def test_psc_counts_pin_the_extremes_and_clamp():
    counts = psc_counts({"A": 1, "B": 2, "C": 3, "D": 100}, total=100, lo=10, hi=40)
    assert counts == {"A": 10, "D": 40, "B": 20, "C": 30}
    # B, C share 90 as 0.9 / 89.1: C (29 over) is clamped to 60 first, B gets the other 30
    clamped = psc_counts({"A": 1, "B": 1, "C": 99, "D": 200}, total=160, lo=10, hi=60)
    assert clamped == {"A": 10, "D": 60, "C": 60, "B": 30}
    with pytest.raises(ValueError):
        psc_counts({"A": 1, "B": 1, "C": 1}, total=10, lo=5, hi=6)


def test_quarter_starts():
    assert quarter_start(0) == date(2021, 4, 1)
    assert quarter_start(3) == date(2022, 1, 1)
    assert quarter_start(7) == date(2023, 1, 1)


def test_nhs_numbers_carry_a_valid_check_digit():
    # 999 000 000 -> weights 10..2: 9*10+9*9+9*8 = 243, 243 % 11 = 1, check = 10: invalid
    assert nhs_number(0) is None
    # 999 000 001 -> 243 + 1*2 = 245, 245 % 11 = 3, check 8
    assert nhs_number(1) == "9990000018"
