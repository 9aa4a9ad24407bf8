"""A national-scale, deterministic data set: 42 real ICBs, 15 PSCs, 15,140 care homes.

How the per-PSC range is hit exactly (DOMAIN.md: denominators range from 263 to 1,679 homes):
each PSC gets a weight, the number of GP practices of its ICBs (``gp_practices_in_alloc_file``
in icbs.csv, a population proxy). The lightest PSC is pinned at 263 homes and the heaviest at
1,679; the rest (13,198) are shared among the other 13 in proportion to weight, any share
outside [263, 1679] is clamped (the worst first) and the rest re-shared, and the
largest-remainder method rounds so the total is exactly 15,140. Within a PSC, homes are split
across its ICBs the same way. Residents per home: uniform 20..40 (mean 30). Stage history:
every home is reported in each of eight quarters (2021/22 Q1 .. 2022/23 Q4); it starts at stage
0..2 and moves up one stage in a quarter with its own probability, with rare regressions.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ICBS_CSV = Path(__file__).resolve().parent.parent / "services/adoption/data/icbs.csv"
TOTAL_HOMES, PSC_MIN, PSC_MAX = 15_140, 263, 1_679
FIRST_QUARTER_START = date(2021, 4, 1)  # 2021/22 Q1
QUARTERS = 8


@dataclass(frozen=True, slots=True)
class Icb:
    ods_code: str
    region: str
    psc_code: str
    weight: int


@dataclass(frozen=True, slots=True)
class Home:
    site_id: str
    icb_code: str
    psc_code: str
    region: str
    residents: int


@dataclass(frozen=True, slots=True)
class StageStep:
    site_id: str
    quarter: int  # 0 = 2021/22 Q1
    applies_from: date
    stage: int


@dataclass(frozen=True)
class Dataset:
    icbs: tuple[Icb, ...]
    homes: tuple[Home, ...]
    stages: tuple[StageStep, ...]

    def per_psc(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for home in self.homes:
            counts[home.psc_code] += 1
        return dict(counts)


def load_icbs(path: Path = ICBS_CSV) -> list[Icb]:
    with path.open(newline="", encoding="utf-8") as f:
        return [Icb(r["ods_code"], r["region"], r["psc_code"], int(r["gp_practices_in_alloc_file"]))
                for r in csv.DictReader(f)]


def split(total: int, weights: list[float]) -> list[int]:
    """``total`` shared in proportion to ``weights`` (largest remainder; sums to ``total``)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    out = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (out[i] - exact[i], i))
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def psc_counts(weights: dict[str, int], total: int = TOTAL_HOMES, lo: int = PSC_MIN,
               hi: int = PSC_MAX) -> dict[str, int]:
    """Homes per PSC: lightest pinned at ``lo``, heaviest at ``hi``, the rest proportional."""
    order = sorted(weights, key=lambda p: (weights[p], p))
    counts = {order[0]: lo, order[-1]: hi}
    free, left = order[1:-1], total - lo - hi
    if not len(free) * lo <= left <= len(free) * hi:
        raise ValueError("total cannot be shared within the bounds")
    while free:
        shares = dict(zip(free, split(left, [weights[p] for p in free]), strict=True))
        worst = max(free, key=lambda p: max(lo - shares[p], shares[p] - hi))
        if lo <= shares[worst] <= hi:
            counts.update(shares)
            break
        counts[worst] = lo if shares[worst] < lo else hi  # clamp the worst, re-share the rest
        left -= counts[worst]
        free.remove(worst)
    return counts


def quarter_start(index: int) -> date:
    month = FIRST_QUARTER_START.month - 1 + 3 * index
    return date(FIRST_QUARTER_START.year + month // 12, month % 12 + 1, 1)


def generate(icbs: list[Icb], *, total: int = TOTAL_HOMES, seed: int = 2023,
             quarters: int = QUARTERS) -> Dataset:
    """The whole data set; the same ``seed`` always gives the same homes and history."""
    rnd = random.Random(seed)
    by_psc: dict[str, list[Icb]] = defaultdict(list)
    for icb in sorted(icbs, key=lambda i: i.ods_code):
        by_psc[icb.psc_code].append(icb)
    counts = psc_counts({p: sum(i.weight for i in members) for p, members in by_psc.items()},
                        total)
    ids: set[str] = set()
    homes: list[Home] = []
    for psc in sorted(by_psc):
        members = by_psc[psc]
        for icb, n in zip(members, split(counts[psc], [i.weight for i in members]), strict=True):
            homes += [Home(_site_id(rnd, ids), icb.ods_code, psc, icb.region, rnd.randint(20, 40))
                      for _ in range(n)]
    stages = [step for home in homes for step in _history(rnd, home.site_id, quarters)]
    return Dataset(tuple(icbs), tuple(homes), tuple(stages))


def _site_id(rnd: random.Random, seen: set[str]) -> str:
    while True:
        site = f"1-{rnd.randrange(10**9, 10**10)}"  # CQC location id shape
        if site not in seen:
            seen.add(site)
            return site


def _history(rnd: random.Random, site_id: str, quarters: int) -> list[StageStep]:
    stage, pace = rnd.randint(0, 2), rnd.uniform(0.1, 0.95)
    out = []
    for q in range(quarters):
        roll = rnd.random()
        if roll < pace:
            stage = min(7, stage + 1)
        elif roll > 0.98:
            stage = max(0, stage - 1)
        out.append(StageStep(site_id, q, quarter_start(q) + timedelta(days=rnd.randint(0, 80)),
                             stage))
    return out
