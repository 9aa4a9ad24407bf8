"""``mandet demo``: fill a running platform with a simulated year, through the public APIs only.

Quarterly stage returns for every registered home (the 728 shipped homes in the embedded
default) over the last four quarters and the current one, and residents' observation sets over
the last four weeks (ingest refuses older ones) with realistic NEWS2 inputs: mostly normal
vitals, a tail of abnormal ones, and a few incomplete sets. A progress bar shows each request.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from tqdm import tqdm

from shared.quarters import Quarter

TOOLS = ("NEWS2 and soft signs", "NEWS2 and soft signs", "Soft signs", "NEWS2")


async def run(client: httpx.AsyncClient, *, max_sites: int | None = None, residents: int = 3,
              days: int = 28, seed: int = 2023, progress: bool = True) -> dict[str, int]:
    """Drive the APIs through `client` (admin token set); returns what was sent."""
    rnd = random.Random(seed)
    sites = (await _sites(client))[:max_sites]
    today = datetime.now(UTC).date()
    quarters = [Quarter.of_date(today)]
    for _ in range(4):
        quarters.insert(0, quarters[0].prev())
    stage_rows = _stage_rows(sites, quarters, today, rnd)
    observed = sites[: max(1, len(sites) // 3)]
    sets = [_observation(s, r, today, days, rnd) for s in observed for r in range(residents)
            for _ in range(rnd.randint(2, 8))]
    chunks = [("/adoption/stages", stage_rows[i:i + 1000]) for i in range(0, len(stage_rows),
                                                                          1000)]
    chunks += [("/ingest/observation-sets/batch", {"items": sets[i:i + 500]})
               for i in range(0, len(sets), 500)]
    for path, body in tqdm(chunks, desc="demo", unit="request", disable=not progress):
        r = await client.post(path, json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:300]}")
    return {"sites": len(sites), "stage_rows": len(stage_rows), "observation_sets": len(sets)}


async def _sites(client: httpx.AsyncClient) -> list[str]:
    out: list[str] = []
    while True:
        r = await client.get("/adoption/sites", params={"limit": 1000, "offset": len(out)})
        r.raise_for_status()
        page = [s["site_id"] for s in r.json()]
        out += page
        if len(page) < 1000:
            return out


def _stage_rows(sites: list[str], quarters: list[Quarter], today: date,
                rnd: random.Random) -> list[dict[str, Any]]:
    rows = []
    for site_id in sites:
        stage, tool = rnd.choice((0, 0, 1, 2, 3)), rnd.choice(TOOLS)
        for q in quarters:
            stage = max(0, min(7, stage + rnd.choice((0, 0, 1, 1, 1, 2, -1))))
            applies = q.start + timedelta(days=rnd.randrange(60))
            if applies <= today:
                rows.append({"site_id": site_id, "tool": tool, "stage": stage,
                             "applies_from": applies.isoformat()})
    return rows


def _observation(site_id: str, resident: int, today: date, days: int,
                 rnd: random.Random) -> dict[str, Any]:
    unwell = rnd.random() < 0.12   # a tail of residents getting worse
    taken = datetime.now(UTC) - timedelta(days=rnd.uniform(0, days - 1),
                                          minutes=rnd.randrange(5, 600))
    item: dict[str, Any] = {
        "local_id": f"demo-{site_id}-{resident}", "site_id": site_id,
        "taken_at": taken.isoformat(),
        "respiration_rate": round(rnd.gauss(23 if unwell else 16, 3)),
        "spo2": min(100, round(rnd.gauss(92 if unwell else 96.5, 1.8))),
        "on_oxygen": unwell and rnd.random() < 0.3,
        "systolic_bp": round(rnd.gauss(105 if unwell else 132, 15)),
        "pulse": round(rnd.gauss(104 if unwell else 76, 11)),
        "consciousness": "C" if unwell and rnd.random() < 0.2 else "A",
        "temperature": f"{rnd.gauss(38.2 if unwell else 36.8, 0.5):.1f}",
    }
    if rnd.random() < 0.08:   # an incomplete set: never scored as normal
        item.pop(rnd.choice(["respiration_rate", "spo2", "systolic_bp", "pulse"]))
    return item
