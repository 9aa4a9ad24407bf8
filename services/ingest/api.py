"""Ingest HTTP routes (observations arrive with issue #4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from shared.auth import Principal, Role, require
from shared.problems import Problem
from shared.runtime import Runtime
from services.ingest.models import KnownSite


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["sites"])

    @api.get("/sites/{site_id}")
    async def known_site(
        site_id: str, principal: Annotated[Principal, Depends(require(Role.PLATFORM))]
    ) -> dict:
        """Whether ingest knows a site yet (its copy follows the register's events)."""
        async with runtime.db.session() as session:
            site = await session.get(KnownSite, site_id)
        if site is None:
            raise Problem(404, "Not Found", f"site {site_id} is not known to ingest")
        principal.require_site(site.site_id, site.icb_code, site.psc_code)
        return site.model_dump(mode="json")

    return api
