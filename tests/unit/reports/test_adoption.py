"""Adoption view arithmetic and transitions: hand-written expected values."""

from decimal import Decimal

import pytest

from services.reports.domain.adoption import (
    ALL_TOOLS,
    Ambitions,
    adoption_row,
    percent,
    stage_counts,
)
from services.reports.domain.transitions import summarise

KEY = ("2022/23 Q4", "psc", "SW", "care-homes", ALL_TOOLS)


@pytest.mark.parametrize(("num", "den", "expected"), [
    (0, 0, None),
    (1, 3, Decimal("33.3")),
    (2, 3, Decimal("66.7")),
    (1, 8, Decimal("12.5")),          # exact .5 at 2 dp: 12.5
    (1, 16, Decimal("6.3")),          # 6.25 -> 6.3 half-up (binary round would give 6.2)
    (11621, 14899, Decimal("78.0")),
    (20, 20, Decimal("100.0")),
])
def test_percent_half_up(num, den, expected):
    assert percent(num, den) == expected


def test_unreported_open_sites_are_stage_zero_for_all_tools_only():
    assert stage_counts(10, {3: 2, 5: 1, 0: 1}, all_tools=True) == (7, 0, 0, 2, 0, 1, 0, 0)
    assert stage_counts(10, {3: 2, 5: 1, 0: 1}, all_tools=False) == (1, 0, 0, 2, 0, 1, 0, 0)


def test_more_reported_than_open_is_a_bug():
    with pytest.raises(ValueError):
        stage_counts(2, {3: 3}, all_tools=True)


def test_row_measures_and_ambitions():
    # 20 open homes: 1 at 3, 2 at 4, 3 at 5, 4 at 6, 8 at 7, 2 never reported
    row = adoption_row(KEY, 20, {3: 1, 4: 2, 5: 3, 6: 4, 7: 8}, Ambitions())
    assert row.stages == (2, 0, 0, 1, 2, 3, 4, 8)
    m = row.measures
    assert (m["ge3"].numerator, m["ge3"].denominator, m["ge3"].percent) == (18, 20,
                                                                            Decimal("90.0"))
    assert (m["ge5"].numerator, m["ge5"].percent) == (15, Decimal("75.0"))
    assert (m["ge6"].numerator, m["ge6"].percent) == (12, Decimal("60.0"))
    assert (m["eq7"].numerator, m["eq7"].percent) == (8, Decimal("40.0"))
    assert row.ambitions == {"decision": (Decimal(95), False), "adoption": (Decimal(85), False),
                             "sustained": (Decimal(40), True)}   # exactly 40 % meets 40 %
    assert m["ge3"].change_numerator is None and m["ge3"].change_points is None


def test_ambition_met_is_exact_not_rounded():
    # 94.96 % rounds to 95.0 for display but does not meet a 95 % ambition
    row = adoption_row(KEY, 2500, {3: 2374}, Ambitions())
    assert row.measures["ge3"].percent == Decimal("95.0")
    assert row.ambitions["decision"] == (Decimal(95), False)


def test_configurable_ambitions():
    row = adoption_row(KEY, 10, {7: 3}, Ambitions(Decimal(50), Decimal(30), Decimal("30")))
    assert row.ambitions == {"decision": (Decimal(50), False), "adoption": (Decimal(30), True),
                             "sustained": (Decimal(30), True)}


def test_change_from_previous_quarter():
    before = adoption_row(("2022/23 Q3", *KEY[1:]), 10, {3: 4, 5: 1}, Ambitions())
    now = adoption_row(KEY, 12, {3: 3, 5: 4, 7: 1}, Ambitions(), previous=before)
    # ge3: 5/10 = 50.0 -> 8/12 = 66.7 ; eq7: 0 -> 1/12 = 8.3
    assert now.measures["ge3"].change_numerator == 3
    assert now.measures["ge3"].change_points == Decimal("16.7")
    assert now.measures["eq7"].change_points == Decimal("8.3")


def test_empty_area_has_no_percent_and_no_verdict():
    row = adoption_row(KEY, 0, {}, Ambitions())
    assert row.stages == (0,) * 8
    assert row.measures["ge5"].percent is None
    assert row.ambitions["adoption"] == (Decimal(85), None)


def test_per_tool_row_uses_the_area_denominator():
    row = adoption_row(KEY[:4] + ("NEWS2",), 20, {5: 4}, Ambitions())
    assert row.stages == (0, 0, 0, 0, 0, 4, 0, 0)
    assert row.measures["ge5"].percent == Decimal("20.0")


def test_transitions_summary():
    t = summarise([(0, 3), (3, 5), (5, 5), (7, 6), (0, 3), (2, 2)])
    assert (t.up, t.down, t.same) == (3, 1, 2)
    assert t.moves == {(0, 3): 2, (3, 5): 1, (7, 6): 1}


def test_count_deltas_cancel_and_cover_every_level():
    from services.reports.domain.counts import deltas

    old = {"qn": 8091, "tool": "NEWS2", "stage": 3, "icb_code": "QJK", "psc_code": "SW",
           "region": "South West"}
    same = dict(old)
    new = {**old, "stage": 5}
    assert deltas("p", [old], [same]) == []
    got = deltas("p", [old], [new])
    assert len(got) == 8
    assert {(d["level"], d["code"], d["stage"], d["sites"]) for d in got} == {
        ("national", "ENG", 3, -1), ("national", "ENG", 5, 1),
        ("region", "South West", 3, -1), ("region", "South West", 5, 1),
        ("psc", "SW", 3, -1), ("psc", "SW", 5, 1), ("icb", "QJK", 3, -1), ("icb", "QJK", 5, 1)}
    assert deltas("p", [], [{**old, "tool": None}])[0]["tool"] == ""


def test_count_totals_of_a_rebuild_are_hand_counted_per_level():
    from services.reports.domain.counts import totals

    facts = {("p", "QJK", "SW", "South West"): [(8091, "NEWS2", 3), (8091, "NEWS2", 3)],
             ("p", "QHL", "SW", "South West"): [(8091, None, 3), (8092, "NEWS2", 5)],
             ("q", "QJK", "SW", "South West"): [(8091, "NEWS2", 3)]}
    assert totals(facts) == [
        ("p", 8091, "icb", "QHL", "", 3, 1), ("p", 8091, "icb", "QJK", "NEWS2", 3, 2),
        ("p", 8091, "national", "ENG", "", 3, 1), ("p", 8091, "national", "ENG", "NEWS2", 3, 2),
        ("p", 8091, "psc", "SW", "", 3, 1), ("p", 8091, "psc", "SW", "NEWS2", 3, 2),
        ("p", 8091, "region", "South West", "", 3, 1),
        ("p", 8091, "region", "South West", "NEWS2", 3, 2),
        ("p", 8092, "icb", "QHL", "NEWS2", 5, 1), ("p", 8092, "national", "ENG", "NEWS2", 5, 1),
        ("p", 8092, "psc", "SW", "NEWS2", 5, 1), ("p", 8092, "region", "South West", "NEWS2", 5, 1),
        ("q", 8091, "icb", "QJK", "NEWS2", 3, 1), ("q", 8091, "national", "ENG", "NEWS2", 3, 1),
        ("q", 8091, "psc", "SW", "NEWS2", 3, 1),
        ("q", 8091, "region", "South West", "NEWS2", 3, 1)]


def test_counts_of_two_sets_of_sites_merge_into_the_counts_of_all():
    """Two workers derive different sites' facts; their per-area counts add up."""
    from collections import Counter

    from services.reports.domain.counts import counted, merged, rolled_up

    area, other = ("p", "QJK", "SW", "South West"), ("p", "QHL", "SW", "South West")
    first = counted({area: [(8091, "NEWS2", 3), (8092, "NEWS2", 5)]})
    second = counted({area: [(8091, "NEWS2", 3)], other: [(8091, None, 7)]})
    both = merged([first, second])
    assert both == {area: Counter({(8091, "NEWS2", 3): 2, (8092, "NEWS2", 5): 1}),
                    other: Counter({(8091, None, 7): 1})}
    assert first[area][(8091, "NEWS2", 3)] == 1   # the parts are left as they were
    assert [r for r in rolled_up(both) if r[2] == "national"] == [
        ("p", 8091, "national", "ENG", "", 7, 1), ("p", 8091, "national", "ENG", "NEWS2", 3, 2),
        ("p", 8092, "national", "ENG", "NEWS2", 5, 1)]
