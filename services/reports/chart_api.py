"""Chart routes: the QART charts as SVG or PNG, from the same queries as the views."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from services.reports import charts, queries, render, scope
from services.reports.api import CODE, READERS, Window, freshness_of, targets_for, window
from services.reports.domain.adoption import ALL_TOOLS
from services.reports.domain.stages import ordinal
from shared.auth import Principal, require
from shared.problems import Problem
from shared.quarters import Quarter
from shared.runtime import Runtime

MEDIA = {"svg": "image/svg+xml", "png": "image/png"}


class StagesChart(Window):
    level: Literal["region", "psc", "icb"] = "psc"
    programme: str = Field(pattern=CODE)


class MeasuresChart(Window):
    level: Literal["national", "region", "psc", "icb"] = "national"
    code: str | None = Field(default=None, pattern=CODE)
    programme: str = Field(pattern=CODE)


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["charts"])
    settings: Any = runtime.settings
    floor = ordinal(Quarter.parse(settings.first_quarter))

    async def rows_for(q: Window, principal: Principal, level: str, code: str | None,
                       programme: str, whole_range: bool) -> tuple[list, dict]:
        fresh = await freshness_of(runtime.db, floor)
        async with runtime.db.session() as session:
            first, last = window(q, floor, fresh.horizon)
            if whole_range and q.quarter is None and q.first is None:
                first = max(floor, last - 7)   # default: the last two years
            allowed = await scope.allowed_codes(session, principal, level, code)
            rows = await queries.adoption(
                session, area=queries.Area(level, code, allowed), programme=programme,
                first=first, last=last, tool=ALL_TOOLS,
                targets=targets_for(settings, programme), floor=floor)
        return rows, fresh.meta

    def image(data: bytes, fmt: str, meta: dict) -> Response:
        return Response(data, media_type=MEDIA[fmt], headers=render.freshness_headers(meta))

    @api.get("/charts/stages.{fmt}", response_class=Response)
    async def stages_chart(fmt: Literal["svg", "png"], q: Annotated[StagesChart, Query()],
                           principal: Annotated[Principal, Depends(require(*READERS))]
                           ) -> Response:
        """Stage shares stacked per area (PSC by default) for one quarter."""
        rows, meta = await rows_for(q, principal, q.level, None, q.programme, False)
        quarters = {r.quarter for r in rows}
        if len(quarters) > 1:
            raise Problem(422, "Request is not valid", "this chart shows one quarter",
                          errors=[{"field": "quarter", "reason": "one quarter only"}])
        return image(await asyncio.to_thread(charts.stage_shares, rows, fmt), fmt, meta)

    @api.get("/charts/measures.{fmt}", response_class=Response)
    async def measures_chart(fmt: Literal["svg", "png"], q: Annotated[MeasuresChart, Query()],
                             principal: Annotated[Principal, Depends(require(*READERS))]
                             ) -> Response:
        """Percentage at >= 3, >= 5 and 7 across quarters, with the ambition lines."""
        if q.level != "national" and q.code is None:
            raise Problem(422, "Request is not valid", "code is required below national level",
                          errors=[{"field": "code", "reason": "required for this level"}])
        rows, meta = await rows_for(q, principal, q.level, q.code, q.programme, True)
        return image(await asyncio.to_thread(charts.measures_over_time, rows, fmt), fmt, meta)

    return api
