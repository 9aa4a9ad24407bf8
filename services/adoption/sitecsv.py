"""Bulk load of the site register from a table shaped like ``data/care_homes.csv``.

Columns read: ``location_id`` (or ``site_id``), ``name``, ``icb_ods_code`` (or ``icb_code``),
``number_of_beds``, ``care_home_with_nursing`` (Y/N), ``registration_date``; optional
``setting_type`` (default care_home), ``deregistration_date`` (or ``closed_on``) and
``successor_id``. Every other column is ignored. A row carries a site's whole set of facts, so
the load is an upsert: created, updated (publishing SiteUpdated, or SiteClosed when it gains a
close date) or unchanged (publishing nothing). Rows are judged in order, so a code repeated
later in the file updates what the earlier row set. A refused row names its row and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.adoption.models import Icb, Site
from services.adoption.sites import SOURCE, SiteFacts, SiteInput, apply_facts, event_of, facts_of
from services.adoption.spreadsheet import Table
from shared.auth import Principal
from shared.outbox import add_events

COLUMNS = {  # our field -> accepted column names, first found wins
    "site_id": ("location_id", "site_id"), "name": ("name",),
    "icb_code": ("icb_ods_code", "icb_code"), "beds": ("number_of_beds", "beds"),
    "nursing": ("care_home_with_nursing", "nursing"), "opened_on": ("registration_date",),
    "setting_type": ("setting_type",), "closed_on": ("deregistration_date", "closed_on"),
    "successor_id": ("successor_id",),
}
REQUIRED = ("site_id", "name", "icb_code")
YES_NO = {"y": True, "yes": True, "true": True, "n": False, "no": False, "false": False}


class LoadResult(BaseModel):
    row: int
    site_id: str | None
    outcome: Literal["created", "updated", "unchanged", "rejected"]
    field: str | None = None
    reason: str | None = None


class LoadReport(BaseModel):
    dry_run: bool
    created: int
    updated: int
    unchanged: int
    rejected: int
    rows: list[LoadResult]


def parse_sites(table: Table) -> tuple[list[tuple[int, SiteInput]], list[LoadResult]]:
    """Rows as site inputs; unreadable rows refused with the column that failed."""
    parsed, refused = [], []
    for number, cells in table.rows:
        values = {f: _value(f, cells) for f in COLUMNS}
        values = {k: v for k, v in values.items() if v is not None}
        try:
            parsed.append((number, SiteInput.model_validate(values)))
        except ValidationError as exc:
            refused.append(_refused(number, values.get("site_id"), exc))
    return parsed, refused


def _value(name: str, cells: dict[str, Any]) -> Any:
    raw = next((cells[c] for c in COLUMNS[name] if cells.get(c) not in (None, "")), None)
    if isinstance(raw, str):
        raw = raw.strip() or None
    if name == "nursing" and isinstance(raw, str):
        return YES_NO.get(raw.lower(), raw)
    return raw


def _refused(number: int, site_id: Any, exc: ValidationError) -> LoadResult:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "row"
    column = next((c for c in COLUMNS.get(field, (field,))), field)
    return LoadResult(row=number, site_id=None if site_id is None else str(site_id),
                      outcome="rejected", field=column, reason=f"{column}: {error['msg']}")


async def load_sites(session: AsyncSession, rows: Sequence[tuple[int, SiteInput]], *,
                     by: Principal, dry_run: bool = False,
                     refused: Sequence[LoadResult] = ()) -> LoadReport:
    """Upsert sites from parsed rows; one SiteRegistered/Updated/Closed per change."""
    icbs = {i.code: i for i in (await session.exec(select(Icb))).all()}
    codes = [data.site_id for _, data in rows]
    known = {s.site_id: s for s in (await session.exec(
        select(Site).where(col(Site.site_id).in_(codes)))).all()}
    results, events = list(refused), []
    for number, data in rows:
        result, event = _judge(number, data, icbs, known, by)
        results.append(result)
        if event is not None:
            events.append(event)
    if dry_run:
        session.expunge_all()  # nothing judged here may reach the database
    elif events:
        session.add_all(known.values())
        await session.flush()
        await add_events(session, events, source=SOURCE)
    return _summary(results, dry_run)


def _judge(number: int, data: SiteInput, icbs: dict[str, Icb], known: dict[str, Site],
           by: Principal) -> tuple[LoadResult, SiteFacts | None]:
    icb = icbs.get(data.icb_code)
    if icb is None:
        return _reject(number, data, "icb_ods_code",
                       f"unknown ICB {data.icb_code!r}: not a known ICB ODS code"), None
    scopes = [(icb.code, icb.psc_code)]  # where the site goes and, if known, where it is
    if (current := known.get(data.site_id)) is not None:
        scopes.append((current.icb_code, current.psc_code))
    for icb_code, psc in scopes:
        if not by.covers_site(data.site_id, icb_code, psc):
            return _reject(number, data, "location_id", f"site {data.site_id} is in PSC {psc},"
                                                         " outside this token's scope"), None
    site, outcome, kind = apply_facts(known.get(data.site_id), facts_of(data, icb))
    known[site.site_id] = site
    event = None if kind is None else event_of(kind, site)
    return LoadResult(row=number, site_id=data.site_id, outcome=outcome), event


def _reject(number: int, data: SiteInput, column: str, reason: str) -> LoadResult:
    return LoadResult(row=number, site_id=data.site_id, outcome="rejected", field=column,
                      reason=reason)


def _summary(results: list[LoadResult], dry_run: bool) -> LoadReport:
    results.sort(key=lambda r: r.row)
    kinds = ("created", "updated", "unchanged", "rejected")
    return LoadReport(dry_run=dry_run, rows=results,
                      **{k: sum(r.outcome == k for r in results) for k in kinds})
