"""Reports HTTP routes (the QART views arrive with issue #6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlmodel import select

from shared.auth import Principal, Role, require
from shared.runtime import Runtime
from services.reports.models import IcbRegistrations


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["views"])

    @api.get("/registrations")
    async def registrations(
        principal: Annotated[Principal, Depends(require(Role.DASHBOARD))],
    ) -> list[dict]:
        """Sites registered per ICB, as the reports service has applied them."""
        async with runtime.db.session() as session:
            rows = (await session.exec(select(IcbRegistrations)
                                       .order_by(IcbRegistrations.icb_code))).all()
        return [r.model_dump() for r in rows]

    return api
