"""``mandet sites-load FILE``: bulk load the register from a file, with a progress bar.

Runs against the service database directly (migrating it first) in chunks, one transaction
per chunk, through the same handler as the HTTP endpoint; the events wait in the outbox until
the service's relay publishes them.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from services.adoption import reference
from services.adoption.bootstrap import bootstrap
from services.adoption.sitecsv import LoadReport, LoadResult, load_sites, parse_sites
from services.adoption.spreadsheet import read_table
from shared.auth import Principal, Role
from shared.bus.memory import MemoryBus
from shared.migrations import upgrade
from shared.settings import AdoptionSettings

OPERATOR = Principal(sub="cli", role=Role.ADMIN)


async def load_file(path: Path, *, settings: AdoptionSettings | None = None,
                    dry_run: bool = False, chunk: int = 250,
                    progress: bool = True) -> LoadReport:
    """Load `path` (.csv or .xlsx) into the register; the merged per-row report."""
    runtime = bootstrap(settings, bus=MemoryBus())
    try:
        await upgrade(runtime.db, runtime.migrations)
        async with runtime.db.transaction() as session:
            await reference.load_icbs(session)
        fmt = "xlsx" if path.suffix.lower() == ".xlsx" else "csv"
        rows, refused = parse_sites(read_table(_read(path), fmt, max_rows=1_000_000))
        results: list[LoadResult] = list(refused)
        with tqdm(total=len(rows) + len(refused), unit="row", disable=not progress) as bar:
            bar.update(len(refused))
            for start in range(0, len(rows), chunk):
                async with runtime.db.transaction() as session:
                    part = await load_sites(session, rows[start:start + chunk], by=OPERATOR,
                                            dry_run=dry_run)
                results.extend(part.rows)
                bar.update(len(part.rows))
    finally:
        await runtime.db.dispose()
    return _merged(results, dry_run)


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _merged(results: list[LoadResult], dry_run: bool) -> LoadReport:
    results.sort(key=lambda r: r.row)
    kinds = ("created", "updated", "unchanged", "rejected")
    return LoadReport(dry_run=dry_run, rows=results,
                      **{k: sum(r.outcome == k for r in results) for k in kinds})


def summary_lines(report: LoadReport) -> list[str]:
    """What a person reads after a load: the counts, then each rejected row and why."""
    lines = [f"{'dry run: ' if report.dry_run else ''}created {report.created}, updated"
             f" {report.updated}, unchanged {report.unchanged}, rejected {report.rejected}"]
    lines += [f"  row {r.row} ({r.site_id or '?'}): {r.reason}"
              for r in report.rows if r.outcome == "rejected"]
    return lines
