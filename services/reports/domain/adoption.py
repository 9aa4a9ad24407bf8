"""Adoption-by-quarter arithmetic for one area (pure).

Denominator: sites open at the quarter end in the area, whatever they reported; a site with no
record in force counts at stage 0. The "all tools" row therefore fills stage 0 as
``denominator - sites at stages 1-7``. A per-tool row counts only the sites whose record in
force names that tool, over the SAME area denominator, so tool rows add up to the all-tools
row and no chart's denominator shifts. Percentages are exact ratios rounded half-up to 0.1;
an ambition is met when ``numerator * 100 >= target * denominator`` (no rounding involved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

ALL_TOOLS = "*"
LEVELS = ("national", "region", "psc", "icb")
NATIONAL = "ENG"
# measure name -> (lowest stage, highest stage) counted in its numerator
MEASURES: dict[str, tuple[int, int]] = {"ge3": (3, 7), "ge5": (5, 7), "ge6": (6, 7),
                                        "eq7": (7, 7)}
AMBITION_MEASURE = {"decision": "ge3", "adoption": "ge5", "sustained": "eq7"}


@dataclass(frozen=True)
class Ambitions:
    """Targets in percent of the denominator (2022/23 defaults)."""

    decision: Decimal = Decimal(95)
    adoption: Decimal = Decimal(85)
    sustained: Decimal = Decimal(40)


@dataclass(frozen=True)
class Measure:
    numerator: int
    denominator: int
    percent: Decimal | None
    change_numerator: int | None = None
    change_points: Decimal | None = None


@dataclass(frozen=True)
class AdoptionRow:
    quarter: str
    level: str
    code: str
    programme: str
    tool: str
    denominator: int
    stages: tuple[int, ...]
    measures: dict[str, Measure] = field(default_factory=dict)
    ambitions: dict[str, tuple[Decimal, bool | None]] = field(default_factory=dict)


def percent(numerator: int, denominator: int) -> Decimal | None:
    """numerator / denominator as a percentage, half-up to one decimal; None if no sites."""
    if denominator == 0:
        return None
    exact = Decimal(numerator * 100) / Decimal(denominator)
    return exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def stage_counts(denominator: int, reported: Mapping[int, int], all_tools: bool
                 ) -> tuple[int, ...]:
    """Sites at each stage 0-7; for all tools, unreported open sites join stage 0."""
    counts = [reported.get(stage, 0) for stage in range(8)]
    if all_tools:
        counts[0] = denominator - sum(counts[1:])
        if counts[0] < 0:
            raise ValueError("more sites reported at stages 1-7 than are open")
    return tuple(counts)


def measures(stages: tuple[int, ...], denominator: int,
             previous: AdoptionRow | None = None) -> dict[str, Measure]:
    out = {}
    for name, (low, high) in MEASURES.items():
        numerator = sum(stages[low:high + 1])
        pct = percent(numerator, denominator)
        before = previous.measures[name] if previous else None
        out[name] = Measure(
            numerator, denominator, pct,
            change_numerator=None if before is None else numerator - before.numerator,
            change_points=(None if before is None or pct is None or before.percent is None
                           else pct - before.percent))
    return out


def ambitions_met(by_measure: Mapping[str, Measure], targets: Ambitions
                  ) -> dict[str, tuple[Decimal, bool | None]]:
    """Each ambition's target and whether it is met (None when there are no sites)."""
    out: dict[str, tuple[Decimal, bool | None]] = {}
    for name, measure_name in AMBITION_MEASURE.items():
        target: Decimal = getattr(targets, name)
        m = by_measure[measure_name]
        met = None if m.denominator == 0 else m.numerator * 100 >= target * m.denominator
        out[name] = (target, met)
    return out


def adoption_row(key: tuple[str, str, str, str, str], denominator: int,
                 reported: Mapping[int, int], targets: Ambitions,
                 previous: AdoptionRow | None = None) -> AdoptionRow:
    """One view row. key = (quarter label, level, code, programme, tool or ALL_TOOLS)."""
    quarter, level, code, programme, tool = key
    stages = stage_counts(denominator, reported, tool == ALL_TOOLS)
    by_measure = measures(stages, denominator, previous)
    return AdoptionRow(quarter, level, code, programme, tool, denominator, stages, by_measure,
                       ambitions_met(by_measure, targets))
