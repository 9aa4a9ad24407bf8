"""Counter deltas for the stage-count view (pure).

A refresh replaces some facts of one site and programme; each fact counts once at every level
(national, its region, its PSC, its ICB). The delta of a refresh is +1 per added fact and -1 per
removed fact at each (quarter, level, code, tool, stage); keys that net to zero are dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from services.reports.domain.adoption import NATIONAL

LEVEL_COLUMNS = (("national", None), ("region", "region"), ("psc", "psc_code"),
                 ("icb", "icb_code"))


def deltas(programme: str, removed: Iterable[Mapping[str, Any]],
           added: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Counter rows (with signed ``sites``) turning the removed facts into the added ones."""
    net: Counter[tuple[int, str, str, str, int]] = Counter()
    for sign, facts in ((-1, removed), (1, added)):
        for fact in facts:
            for level, column in LEVEL_COLUMNS:
                code = NATIONAL if column is None else fact[column]
                net[(fact["qn"], level, code, fact["tool"] or "", fact["stage"])] += sign
    return [{"programme": programme, "qn": qn, "level": level, "code": code, "tool": tool,
             "stage": stage, "sites": n}
            for (qn, level, code, tool, stage), n in sorted(net.items()) if n]


Area = tuple[str, str, str, str]   # (programme, icb_code, psc_code, region)
Counted = dict[Area, Counter]   # per area: (qn, tool, stage) -> sites


def totals(facts: Mapping[Area, Iterable[tuple[int, str | None, int]]]
           ) -> list[tuple[str, int, str, str, str, int, int]]:
    """Counter rows (programme, qn, level, code, tool, stage, sites) counting these facts: a
    GROUP BY of the facts at every level. Facts come grouped by (programme, icb_code,
    psc_code, region), each as (qn, tool, stage), so they are counted per area first (far
    fewer keys than facts) and only those counts are rolled up to the four levels."""
    return rolled_up(counted(facts))


def counted(facts: Mapping[Area, Iterable[tuple[int, str | None, int]]]) -> Counted:
    """The facts counted per area (``totals``' first step). Counts of disjoint sets of sites
    add up (``merged``): processes that derived different sites' facts send these."""
    return {area: Counter(quarters) for area, quarters in facts.items()}


def merged(parts: Iterable[Counted]) -> Counted:
    out: Counted = {}
    for part in parts:
        for area, counts in part.items():
            out.setdefault(area, Counter()).update(counts)
    return out


def rolled_up(per_area: Mapping[Area, Counter]) -> list[tuple[str, int, str, str, str, int, int]]:
    """``totals`` of facts already ``counted``."""
    net: Counter[tuple[str, int, str, str, str, int]] = Counter()
    for (programme, icb, psc, region), quarters in per_area.items():
        for (qn, tool, stage), n in quarters.items():
            for level, code in (("national", NATIONAL), ("region", region), ("psc", psc),
                                ("icb", icb)):
                net[(programme, qn, level, code, tool or "", stage)] += n
    return [(*key, n) for key, n in sorted(net.items())]
