"""Programme and tool reference data over HTTP: anyone who reads stages lists, admins add."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from services.adoption import programmes
from services.adoption.programmes import ProgrammeIn, ProgrammeOut, ToolIn
from shared.auth import Principal, Role, require
from shared.runtime import Runtime

READERS = (Role.PSC, Role.DASHBOARD)


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["programmes"])
    db = runtime.db

    @api.get("/programmes", response_model=list[ProgrammeOut])
    async def list_programmes(
        _: Annotated[Principal, Depends(require(*READERS))],
    ) -> list[ProgrammeOut]:
        """Every programme on the 0-7 scale with the tools it reports."""
        async with db.session() as session:
            return await programmes.list_programmes(session)

    @api.post("/programmes", status_code=201, response_model=ProgrammeOut)
    async def add_programme(
        body: ProgrammeIn, _: Annotated[Principal, Depends(require())],
    ) -> ProgrammeOut:
        """Add a programme and its tools (admin only)."""
        async with db.transaction() as session:
            await programmes.add_programme(session, body)
        return ProgrammeOut(code=body.code, name=body.name, tools=body.tools)

    @api.post("/programmes/{code}/tools", status_code=201, response_model=ToolIn)
    async def add_tool(
        code: str, body: ToolIn, _: Annotated[Principal, Depends(require())],
    ) -> ToolIn:
        """Add a tool to a programme (admin only)."""
        async with db.transaction() as session:
            await programmes.add_tool(session, code, body)
        return body

    return api
