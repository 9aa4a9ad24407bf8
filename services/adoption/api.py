"""Adoption HTTP routes for the site register: translate requests to handler calls only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.adoption import api_programmes, api_stages, sitecsv, sites
from services.adoption.sitecsv import LoadReport
from services.adoption.sites import SiteInput, SiteOut
from services.adoption.uploads import OPENAPI, read_uploaded_table
from shared.auth import Principal, Role, require
from shared.runtime import Runtime

READERS = (Role.PSC, Role.DASHBOARD)
WRITERS = (Role.PSC,)


def routers(runtime: Runtime) -> list[APIRouter]:
    return [router(runtime), api_stages.router(runtime), api_programmes.router(runtime)]


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["sites"])
    db = runtime.db

    @api.post("/sites", response_model=SiteOut, status_code=201,
              responses={200: {"description": "updated or unchanged"}})
    async def register_site(
        body: SiteInput, response: Response,
        principal: Annotated[Principal, Depends(require(*WRITERS))],
    ) -> SiteOut:
        """Register a site, or update it; 201 when created, 200 otherwise."""
        async with db.transaction() as session:
            site, outcome = await sites.register_site(session, body, by=principal)
        runtime.relay.wake()
        response.status_code = 201 if outcome == "created" else 200
        response.headers["x-outcome"] = outcome
        return SiteOut.model_validate(site, from_attributes=True)

    @api.post("/sites/load", response_model=LoadReport, openapi_extra=OPENAPI)
    async def load_sites(
        request: Request, principal: Annotated[Principal, Depends(require(*WRITERS))],
        dry_run: bool = False,
    ) -> LoadReport:
        """Bulk create/update sites from a CSV or XLSX shaped like care_homes.csv; per-row report.

        PSC tokens may load only sites whose ICB is in their PSC (others are rejected per row).
        """
        settings = runtime.settings
        table = await read_uploaded_table(
            request, max_bytes=settings.max_upload_bytes, max_rows=settings.max_upload_rows,
            max_uncompressed=settings.max_xlsx_uncompressed_bytes)
        rows, refused = sitecsv.parse_sites(table)
        async with db.transaction() as session:
            report = await sitecsv.load_sites(session, rows, by=principal, dry_run=dry_run,
                                              refused=refused)
        runtime.relay.wake()
        return report

    @api.get("/sites/{site_id}", response_model=SiteOut)
    async def get_site(
        site_id: str, principal: Annotated[Principal, Depends(require(*READERS))]
    ) -> SiteOut:
        async with db.session() as session:
            site = await sites.get_site(session, site_id, by=principal)
        return SiteOut.model_validate(site, from_attributes=True)

    @api.get("/sites", response_model=list[SiteOut])
    async def list_sites(
        principal: Annotated[Principal, Depends(require(*READERS))],
        icb: str | None = None, psc: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[SiteOut]:
        async with db.session() as session:
            found = await sites.list_sites(session, by=principal, icb=icb, psc=psc,
                                           limit=limit, offset=offset)
        return [SiteOut.model_validate(s, from_attributes=True) for s in found]

    return api
