"""Adoption HTTP routes: translate requests to handler calls, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from shared.auth import Principal, Role, require
from shared.runtime import Runtime
from services.adoption import sites
from services.adoption.sites import SiteInput, SiteOut

READERS = (Role.PSC, Role.DASHBOARD)
WRITERS = (Role.PSC,)


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
