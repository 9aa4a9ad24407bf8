"""Reference data the product ships: the 42 ICBs with their region and PSC (see data/README)."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.dialect import upsert
from services.adoption.models import Icb

DATA = Path(__file__).parent / "data"


def read_icbs(path: Path = DATA / "icbs.csv") -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            {"code": r["ods_code"], "name": r["name"], "short_name": r["short_name"],
             "region": r["region"], "psc_code": r["psc_code"], "psc_name": r["psc_name"]}
            for r in csv.DictReader(fh)
        ]


async def load_icbs(session: AsyncSession) -> int:
    """Upsert the shipped ICB table (idempotent; runs at start-up)."""
    rows = read_icbs()
    dialect = session.get_bind().dialect.name
    for row in rows:
        await session.execute(upsert(Icb.__table__, dialect, ["code"], row))
    return len(rows)
