"""Stage submissions: check each row, classify it against the site's history, record it.

Rows of one batch are judged in order against the history *including the batch's earlier
rows*, so a batch reads exactly like the same rows sent one by one. Every applied row is one
``adoption_stage_report`` row plus one ``StageChanged`` in the outbox, keyed by site id, in the
caller's transaction. A row that changes nothing in force (same tool and stage as the record in
force on its date; a site with no record is at stage 0 with no tool) is "unchanged" and writes
nothing. A dry run judges the same way and writes nothing at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.adoption import rowchecks
from services.adoption.domain.stages import StageRecord, Transition, classify
from services.adoption.models import Site, StageReport
from services.adoption.programmes import load_catalogue
from services.adoption.rowchecks import Refusal, Register, SubmissionIn
from services.adoption.sites import in_scope
from shared.auth import Principal
from shared.dialect import aware
from shared.events.stages import StageChanged
from shared.outbox import add_events
from shared.quarters import local_date

SOURCE = "/mandet/adoption"
Series = tuple[str, str]  # (site_id, programme)


class TransitionOut(BaseModel):
    from_tool: str | None
    from_stage: int
    to_tool: str | None
    to_stage: int
    is_correction: bool
    flags: list[str]


class RowResult(BaseModel):
    row: int
    site_id: str | None = None
    outcome: Literal["applied", "unchanged", "rejected"]
    field: str | None = None
    reason: str | None = None
    suggestions: list[str] = []
    submission_id: uuid.UUID | None = None
    transition: TransitionOut | None = None


class SubmissionReport(BaseModel):
    dry_run: bool
    applied: int
    unchanged: int
    rejected: int
    rows: list[RowResult]


@dataclass(frozen=True)
class Numbered:
    """A parsed row with its number in the source (array position or spreadsheet row)."""

    row: int
    data: SubmissionIn


async def submit(session: AsyncSession, rows: Sequence[Numbered], *, by: Principal,
                 now: datetime, dry_run: bool,
                 refused: Sequence[RowResult] = ()) -> SubmissionReport:
    """Judge and (unless a dry run) apply stage submissions; one result per row."""
    catalogue = await load_catalogue(session)
    register = await _register(session, rows, by)
    histories = await _histories(session, rows)
    today = local_date(now)
    results, reports = list(refused), []
    for item in rows:
        refusal = rowchecks.check(item.data, catalogue=catalogue, register=register, by=by,
                                  today=today)
        if refusal is not None:
            results.append(_rejected(item, refusal))
            continue
        tool = None if item.data.tool is None else catalogue.tool(item.data.programme,
                                                                  item.data.tool)
        result, report = _judge(item, tool, histories, by=by, now=now)
        results.append(result)
        if report is not None:
            reports.append(report)
    if reports and not dry_run:
        await _record(session, reports, register)
    return _summary(results, dry_run)


def _judge(item: Numbered, tool: str | None, histories: dict[Series, list[StageRecord]], *,
           by: Principal, now: datetime) -> tuple[RowResult, StageReport | None]:
    data = item.data
    new = StageRecord(site_id=data.site_id, programme=data.programme, tool=tool,
                      stage=data.stage, applies_from=data.applies_from, reported_at=now,
                      reporter=by.sub)
    history = histories.setdefault((data.site_id, data.programme), [])
    t = classify(history, new)
    if (t.from_tool, t.from_stage) == (t.to_tool, t.to_stage):
        return RowResult(row=item.row, site_id=data.site_id, outcome="unchanged"), None
    history.append(new)
    report = _report(new, data.note, t)
    return RowResult(row=item.row, site_id=data.site_id, outcome="applied",
                     submission_id=report.submission_id, transition=_transition(t)), report


def _report(new: StageRecord, note: str | None, t: Transition) -> StageReport:
    return StageReport(submission_id=uuid.uuid4(), site_id=new.site_id, programme=new.programme,
                       tool=new.tool, stage=new.stage, applies_from=new.applies_from, note=note,
                       reported_at=new.reported_at, reporter=new.reporter,
                       from_tool=t.from_tool, from_stage=t.from_stage,
                       is_correction=t.is_correction, flags=t.flags)


def _transition(t: Transition) -> TransitionOut:
    return TransitionOut(from_tool=t.from_tool, from_stage=t.from_stage, to_tool=t.to_tool,
                         to_stage=t.to_stage, is_correction=t.is_correction, flags=t.flags)


async def _record(session: AsyncSession, reports: list[StageReport], register: Register) -> None:
    session.add_all(reports)
    await session.flush()
    await add_events(session, [_event(r, register.sites[r.site_id]) for r in reports],
                     source=SOURCE)


def _event(r: StageReport, site: Site) -> StageChanged:
    return StageChanged(submission_id=r.submission_id, site_id=r.site_id,
                        icb_code=site.icb_code, psc_code=site.psc_code, programme=r.programme,
                        from_tool=r.from_tool, from_stage=r.from_stage, to_tool=r.tool,
                        to_stage=r.stage, applies_from=r.applies_from,
                        reported_at=r.reported_at, reporter=r.reporter,
                        is_correction=r.is_correction, flags=tuple(r.flags))


async def _register(session: AsyncSession, rows: Sequence[Numbered], by: Principal) -> Register:
    codes = {r.data.site_id for r in rows}
    # Lock the sites' rows (PostgreSQL; SQLite has one writer) so two batches for one site
    # classify one after the other, each against the other's committed history.
    query = (select(Site).where(col(Site.site_id).in_(codes)).order_by(col(Site.site_id))
             .with_for_update())
    found = (await session.exec(query)).all()
    register = Register({s.site_id: s for s in found})
    if codes - register.sites.keys():  # someone mistyped a code: gather suggestions
        visible = await session.exec(in_scope(select(Site.site_id), by))  # type: ignore[arg-type]
        register.visible_codes = list(visible.all())
    return register


async def _histories(session: AsyncSession, rows: Sequence[Numbered]
                     ) -> dict[Series, list[StageRecord]]:
    """Accepted records of every series the batch touches, oldest report first."""
    codes = {r.data.site_id for r in rows}
    query = (select(StageReport).where(col(StageReport.site_id).in_(codes))
             .order_by(col(StageReport.id)))
    histories: dict[Series, list[StageRecord]] = {}
    for r in (await session.exec(query)).all():
        histories.setdefault((r.site_id, r.programme), []).append(as_record(r))
    return histories


def as_record(r: StageReport) -> StageRecord:
    return StageRecord(site_id=r.site_id, programme=r.programme, tool=r.tool, stage=r.stage,
                       applies_from=r.applies_from, reported_at=aware(r.reported_at),
                       reporter=r.reporter)


def _rejected(item: Numbered, refusal: Refusal) -> RowResult:
    return RowResult(row=item.row, site_id=item.data.site_id, outcome="rejected",
                     field=refusal.field, reason=refusal.reason,
                     suggestions=list(refusal.suggestions))


def _summary(results: list[RowResult], dry_run: bool) -> SubmissionReport:
    results.sort(key=lambda r: r.row)
    count = {k: sum(r.outcome == k for r in results) for k in ("applied", "unchanged", "rejected")}
    return SubmissionReport(dry_run=dry_run, rows=results, **count)

