"""Reference data the product ships (see data/README): the 42 ICBs, the 728 sample homes."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.adoption.models import Icb, Site
from services.adoption.sitecsv import LoadReport, load_sites, parse_sites
from services.adoption.spreadsheet import read_table
from shared.auth import Principal, Role
from shared.dialect import upsert

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


SYSTEM = Principal(sub="reference-data", role=Role.ADMIN)


async def load_care_homes_if_empty(session: AsyncSession,
                                   path: Path = DATA / "care_homes.csv") -> LoadReport | None:
    """Load the shipped homes through the bulk-load handler, only into an empty register."""
    if (await session.exec(select(Site.site_id).limit(1))).first() is not None:
        return None
    rows, refused = parse_sites(read_table(_bytes(path), "csv", max_rows=100_000))
    return await load_sites(session, rows, by=SYSTEM, refused=refused)


def _bytes(path: Path) -> bytes:
    return path.read_bytes()  # 0.4 MB, once at start-up: not worth a thread
