"""Stage-of-adoption routes: submit (JSON or spreadsheet), history, positions, template, flags.

Scope: a PSC token submits and reads only its PSC's sites. A submission row for another PSC's
site is rejected in the per-row report (the rest of the batch still applies); reading another
PSC's site, positions or template is 403. Dashboard tokens read everything and write nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field, RootModel, field_validator, model_validator

from services.adoption import history, returns, sites, spreadsheet, submissions
from services.adoption.programmes import load_catalogue
from services.adoption.rowchecks import CARE_HOMES, SubmissionIn
from services.adoption.sites import SiteOut
from services.adoption.submissions import Numbered, SubmissionReport
from services.adoption.uploads import OPENAPI, read_uploaded_table
from shared.auth import Principal, Role, require
from shared.dialect import aware
from shared.problems import Problem
from shared.quarters import Quarter, local_date
from shared.runtime import Runtime

READERS = (Role.PSC, Role.DASHBOARD)
WRITERS = (Role.PSC,)
MAX_ROWS = 5000


class Batch(RootModel[list[SubmissionIn]]):
    """One submission object, or an array of up to 5,000 (errors name ``<index>.<field>``)."""

    root: Annotated[list[SubmissionIn], Field(min_length=1, max_length=MAX_ROWS)]

    @model_validator(mode="before")
    @classmethod
    def _one_is_a_batch_of_one(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value


class ReportOut(BaseModel):
    submission_id: uuid.UUID
    site_id: str
    programme: str
    tool: str | None
    stage: int
    applies_from: date
    note: str | None
    reported_at: datetime
    reporter: str
    from_tool: str | None
    from_stage: int
    is_correction: bool
    flags: list[str]

    @field_validator("reported_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return aware(value)


class SiteHistory(BaseModel):
    site: SiteOut
    history: list[ReportOut]


class PositionOut(BaseModel):
    site_id: str
    name: str
    icb_code: str
    programme: str
    tool: str | None
    stage: int
    applies_from: date | None


def _out(report: object) -> ReportOut:
    return ReportOut.model_validate(report, from_attributes=True)


def _quarter(label: str | None) -> Quarter:
    if label is None:
        return Quarter.of_instant(datetime.now(UTC))
    try:
        quarter = Quarter.parse(label)
    except (ValueError, TypeError) as exc:
        raise _bad_quarter(label, str(exc)) from exc
    if quarter.start > local_date(datetime.now(UTC)):
        raise _bad_quarter(label, f"quarter {label} has not started")
    return quarter


def _bad_quarter(label: str, reason: str) -> Problem:
    return Problem(422, "Request is not valid", reason,
                   errors=[{"field": "quarter", "value": label, "reason": reason}])


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["stages"])
    db = runtime.db

    async def submit(rows: list[Numbered], refused: list, principal: Principal,
                     dry_run: bool) -> SubmissionReport:
        async with db.transaction() as session:
            report = await submissions.submit(session, rows, by=principal, dry_run=dry_run,
                                              now=datetime.now(UTC), refused=refused)
        runtime.relay.wake()
        return report

    @api.post("/stages", response_model=SubmissionReport)
    async def submit_stages(
        body: Annotated[Batch, Body()],
        principal: Annotated[Principal, Depends(require(*WRITERS))],
        dry_run: bool = False,
    ) -> SubmissionReport:
        """Submit one stage report or an array; rows are numbered from 1 in the response."""
        rows = [Numbered(i, item) for i, item in enumerate(body.root, start=1)]
        return await submit(rows, [], principal, dry_run)

    @api.post("/stages/upload", response_model=SubmissionReport, openapi_extra=OPENAPI)
    async def upload_stages(
        request: Request, principal: Annotated[Principal, Depends(require(*WRITERS))],
        dry_run: bool = False,
    ) -> SubmissionReport:
        """Upload a filled return (CSV or XLSX, the template's shape); rows as in the sheet."""
        settings = runtime.settings
        table = await read_uploaded_table(
            request, max_bytes=settings.max_upload_bytes, max_rows=settings.max_upload_rows,
            max_uncompressed=settings.max_xlsx_uncompressed_bytes)
        rows, refused = returns.parse_rows(table)
        return await submit(rows, refused, principal, dry_run)

    @api.get("/sites/{site_id}/stages", response_model=SiteHistory)
    async def site_history(
        site_id: str, principal: Annotated[Principal, Depends(require(*READERS))],
        programme: str | None = None,
    ) -> SiteHistory:
        """A site's full stage history, ordered by the date each report applies from."""
        async with db.session() as session:
            site = await sites.get_site(session, site_id, by=principal)
            found = await history.site_history(session, site_id, programme=programme)
        return SiteHistory(site=SiteOut.model_validate(site, from_attributes=True),
                           history=[_out(r) for r in found])

    @api.get("/pscs/{psc}/positions", response_model=list[PositionOut])
    async def positions(
        psc: str, principal: Annotated[Principal, Depends(require(*READERS))],
        quarter: str | None = None, programme: str = CARE_HOMES,
    ) -> list[PositionOut]:
        """Each open site's tool and stage in force at the end of the quarter (default: now)."""
        q = _quarter(quarter)
        async with db.session() as session:
            await history.require_psc(session, psc, by=principal)
            found = await history.positions(session, psc, programme, start=q.start,
                                            on=min(q.end, local_date(datetime.now(UTC))))
        return [PositionOut(site_id=p.site.site_id, name=p.site.name, icb_code=p.site.icb_code,
                            programme=p.programme, tool=p.tool, stage=p.stage,
                            applies_from=p.applies_from) for p in found]

    @api.get("/pscs/{psc}/template", response_class=Response,
             responses={200: {"content": {spreadsheet.CSV_MEDIA: {},
                                          spreadsheet.XLSX_MEDIA: {}}}})
    async def template(
        psc: str, principal: Annotated[Principal, Depends(require(*READERS))],
        quarter: str | None = None, programme: str = CARE_HOMES,
        format: Literal["csv", "xlsx"] = "csv",  # noqa: A002 - the public parameter name
    ) -> Response:
        """A pre-filled return: the PSC's open sites with their current tool and stage."""
        q = _quarter(quarter)
        async with db.session() as session:
            await history.require_psc(session, psc, by=principal)
            catalogue = await load_catalogue(session)
            if programme not in catalogue.programmes:
                raise Problem(404, "Not Found", f"no programme with code {programme}")
            found = await history.positions(session, psc, programme, start=q.start,
                                            on=min(q.end, local_date(datetime.now(UTC))))
        rows = returns.template_rows(found)
        name = f"return-{psc}-{q.label.replace('/', '-').replace(' ', '-')}.{format}"
        if format == "csv":
            body, media = spreadsheet.write_csv(returns.COLUMNS, rows), spreadsheet.CSV_MEDIA
        else:
            notes = returns.template_notes(psc, q, catalogue.tool_names(programme))
            body = spreadsheet.write_xlsx(returns.COLUMNS, rows, title="return", notes=notes)
            media = spreadsheet.XLSX_MEDIA
        return Response(body, media_type=media,
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    @api.get("/stages/flags", response_model=list[ReportOut])
    async def flags(
        principal: Annotated[Principal, Depends(require(*READERS))],
        psc: str | None = None,
        flag: Literal["regression", "sustainment not evidenced", "correction"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[ReportOut]:
        """Flagged reports in the caller's scope, newest applies-from first."""
        async with db.session() as session:
            found = await history.flagged(session, by=principal, psc=psc, flag=flag,
                                          limit=limit, offset=offset)
        return [_out(r) for r in found]

    return api
