"""Programmes and their tools: reference data read by submissions and added by admins.

A submission names a tool by its reported name ("NEWS2 and soft signs") or by the name used in
the field ("RESTORE2"); both resolve to the reported name, compared without case. Programme
codes are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.adoption.models import Programme, Tool
from shared.problems import Problem

CODE = r"^[a-z0-9][a-z0-9-]{1,63}$"
TEXT = r"^[^\x00]*$"


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, pattern=TEXT)
    also_known_as: str | None = Field(default=None, min_length=1, max_length=100, pattern=TEXT)


class ProgrammeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CODE, description="stable code, e.g. mental-health-wards")
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    tools: list[ToolIn] = Field(default_factory=list, max_length=50)


class ProgrammeOut(BaseModel):
    code: str
    name: str
    tools: list[ToolIn]


@dataclass(frozen=True)
class Catalogue:
    """Every programme and a case-folded lookup of its tools' names and aliases."""

    programmes: dict[str, str]
    tools: dict[str, dict[str, str]]  # programme -> folded name or alias -> reported name

    def tool(self, programme: str, name: str) -> str | None:
        return self.tools.get(programme, {}).get(name.strip().casefold())

    def tool_names(self, programme: str) -> list[str]:
        return sorted(set(self.tools.get(programme, {}).values()))


async def load_catalogue(session: AsyncSession) -> Catalogue:
    programmes = {p.code: p.name for p in (await session.exec(select(Programme))).all()}
    tools: dict[str, dict[str, str]] = {code: {} for code in programmes}
    for t in (await session.exec(select(Tool))).all():
        for alias in (t.name, t.also_known_as):
            if alias:
                tools[t.programme_code][alias.casefold()] = t.name
    return Catalogue(programmes, tools)


async def list_programmes(session: AsyncSession) -> list[ProgrammeOut]:
    """Every programme with its tools in their listed order."""
    progs = (await session.exec(select(Programme).order_by(Programme.code))).all()
    tools = (await session.exec(select(Tool).order_by(Tool.position, Tool.name))).all()
    return [ProgrammeOut(code=p.code, name=p.name,
                         tools=[ToolIn(name=t.name, also_known_as=t.also_known_as)
                                for t in tools if t.programme_code == p.code])
            for p in progs]


async def add_programme(session: AsyncSession, data: ProgrammeIn) -> None:
    """Add a programme with its tools; 409 if the code is taken."""
    if await session.get(Programme, data.code) is not None:
        raise Problem(409, "Conflict", f"programme {data.code} already exists")
    session.add(Programme(code=data.code, name=data.name))
    await session.flush()
    for tool in data.tools:
        await add_tool(session, data.code, tool)


async def add_tool(session: AsyncSession, programme: str, data: ToolIn) -> None:
    """Add a tool to a programme; 404 for an unknown programme, 409 for a name in use."""
    if await session.get(Programme, programme) is None:
        raise Problem(404, "Not Found", f"no programme with code {programme}")
    catalogue = await load_catalogue(session)
    for alias in (data.name, data.also_known_as):
        if alias and catalogue.tool(programme, alias):
            raise Problem(409, "Conflict", f"tool name {alias!r} is already used in {programme}")
    position = len(catalogue.tool_names(programme))
    session.add(Tool(programme_code=programme, name=data.name,
                     also_known_as=data.also_known_as, position=position))
    await session.flush()
