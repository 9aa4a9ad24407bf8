"""Reports HTTP routes: validate the query, check scope, call a query, render. Nothing more."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import to_json
from sqlmodel import select

from services.reports import activity_queries, queries, render, scope
from services.reports.domain.adoption import ALL_TOOLS, Ambitions
from services.reports.domain.stages import from_ordinal, ordinal, ordinal_of_instant
from services.reports.models import ActivityQuarter, Freshness, IcbRegistrations
from shared.auth import Principal, Role, require
from shared.db import Database
from shared.problems import Problem
from shared.quarters import Quarter
from shared.runtime import Runtime

READERS = (Role.DASHBOARD, Role.PSC)
QUARTER = r"^[0-9]{4}/[0-9]{2} Q[1-4]$"
CODE = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"
MAX_QUARTERS = 40
# Data quality's lists are paged in JSON: nationally one names thousands of sites, most of a
# megabyte that a dashboard reading it at a quarter's start (when every new reading changes
# it) could not be sent fast enough; a page, and each list's count, is what a screen shows.
PAGE, MAX_PAGE = 100, 1000


class Window(BaseModel):
    """One quarter, or a range ``first``..``last`` (inclusive); default: the latest."""

    model_config = ConfigDict(extra="forbid")
    quarter: str | None = Field(default=None, pattern=QUARTER)
    first: str | None = Field(default=None, pattern=QUARTER)
    last: str | None = Field(default=None, pattern=QUARTER)
    format: Literal["json", "csv"] = "json"


class AdoptionQuery(Window):
    level: Literal["national", "region", "psc", "icb"] = "national"
    code: str | None = Field(default=None, pattern=CODE)
    programme: str | None = Field(default=None, pattern=CODE)
    tool: str = Field(default=ALL_TOOLS, min_length=1, max_length=100, pattern=r"^[^\x00]*$",
                      description="a tool name, * for all tools, or 'each'")


class OneTool(BaseModel):
    tool: str = Field(default=ALL_TOOLS, min_length=1, max_length=100, pattern=r"^[^\x00]*$",
                      description="a tool name (the sites whose stage in force names it), or * "
                                  "for all tools")

    @field_validator("tool")
    @classmethod
    def _not_each(cls, tool: str) -> str:
        if tool == queries.EACH_TOOL:
            raise ValueError("'each' (a row per tool) is for adoption; give one tool, or *")
        return tool


class TransitionsQuery(Window, OneTool):
    level: Literal["national", "region", "psc", "icb"] = "national"
    code: str | None = Field(default=None, pattern=CODE)
    programme: str | None = Field(default=None, pattern=CODE)


class ActivityQuery(Window, OneTool):
    level: Literal["national", "psc", "icb", "site"] = "national"
    code: str | None = Field(default=None, pattern=CODE)
    programme: str | None = Field(default=None, pattern=CODE,
                                  description="with one tool: that programme's stages (default: "
                                              "a row per programme)")


class QualityQuery(Window, OneTool):
    level: Literal["national", "region", "psc", "icb"] = "national"
    code: str | None = Field(default=None, pattern=CODE,
                             description="the area below national level (required there)")
    programme: str | None = Field(default=None, pattern=CODE)
    check: Literal["stage5_without_observations", "observations_below_stage4",
                   "stale_pscs"] | None = Field(
        default=None, description="one check's list (default: every check's)")
    limit: int | None = Field(default=None, ge=1, le=MAX_PAGE,
                              description=f"JSON: items per list (default {PAGE}); CSV lists "
                                          "every item")
    offset: int | None = Field(default=None, ge=0,
                               description="JSON: items skipped from each list's start, in "
                                           "its order (site id, or PSC code; default 0)")


def _quarter(label: str, field: str) -> int:
    try:
        return ordinal(Quarter.parse(label))
    except ValueError as exc:
        raise Problem(422, "Request is not valid", str(exc),
                      errors=[{"field": field, "value": label, "reason": str(exc)}]) from exc


def window(q: Window, floor: int, horizon: int) -> tuple[int, int]:
    """Quarter ordinals asked for, refused outside the materialised range."""
    if q.quarter and (q.first or q.last):
        raise Problem(422, "Request is not valid", "give quarter, or first and last, not both",
                      errors=[{"field": "quarter", "value": q.quarter,
                               "reason": "not with first/last"}])
    one = q.quarter and _quarter(q.quarter, "quarter")
    first = one or (_quarter(q.first, "first") if q.first else horizon)
    last = one or (_quarter(q.last, "last") if q.last else horizon)
    for name, qn in (("first", first), ("last", last)):
        if not floor <= qn <= horizon:
            reason = (f"views cover {from_ordinal(floor).label} to {from_ordinal(horizon).label}")
            raise Problem(422, "Request is not valid", reason,
                          errors=[{"field": name, "value": from_ordinal(qn).label,
                                   "reason": reason}])
    if first > last or last - first >= MAX_QUARTERS:
        raise Problem(422, "Request is not valid", f"first..last must be 1-{MAX_QUARTERS} "
                      "quarters in order", errors=[{"field": "last", "reason": "bad range"}])
    return first, last


FRESH, QUARTERS = Freshness.__table__, ActivityQuarter.__table__
COLUMNS = ", ".join(c.name for c in FRESH.columns)
# The freshness row as asyncpg reads it: one statement outside any transaction; with the
# activity quarters' versions for the routes that key by them.
PG_FRESHNESS = f"SELECT {COLUMNS} FROM {FRESH.name} WHERE id = 1"
PG_FRESHNESS_QUARTERS = (
    f"SELECT {COLUMNS}, ARRAY(SELECT qn FROM {QUARTERS.name} ORDER BY qn) AS quarters,"
    f" ARRAY(SELECT version FROM {QUARTERS.name} ORDER BY qn) AS versions,"
    f" ARRAY(SELECT quality FROM {QUARTERS.name} ORDER BY qn) AS qualities"
    f" FROM {FRESH.name} WHERE id = 1")


class Fresh(NamedTuple):
    meta: dict[str, Any]   # freshness metadata, on every answer
    horizon: int   # the last materialised quarter (the clock's, before any event)
    stamp: str | None   # the views stamp (None: nothing applied yet, nothing cacheable)
    # activity quarter -> (its version, its data-quality version) (asked for, else empty)
    quarters: dict[int, tuple[str, str | None]]

    def version(self, qn: int | None = None, *, quality: bool = False) -> tuple | None:
        """``ViewCache``'s version: the stamp, and for a quarter's activity also that
        quarter's version, or for its data quality that quarter's data-quality version."""
        if self.stamp is None:
            return None
        if qn is None:
            return (self.stamp,)
        versions = self.quarters.get(qn, (None, None))
        return (self.stamp, versions[1] if quality else versions[0])


async def freshness_of(db: Database, floor: int, *, quarters: bool = False) -> Fresh:
    """The freshness row, and with ``quarters`` the activity quarters' versions.

    Read first on every view request, so it is one statement on a pooled connection, outside
    any session or transaction (on PostgreSQL straight through asyncpg): through a session
    (BEGIN, an ORM select, ROLLBACK) it cost 0.6 ms of the API's CPU, most of a cached read.
    Anything a request reads after it is at least as new (invariant 13)."""
    versions: dict[int, tuple[str, str | None]] = {}
    async with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            found = await (await conn.get_raw_connection()).driver_connection.fetchrow(
                PG_FRESHNESS_QUARTERS if quarters else PG_FRESHNESS)
            row = None if found is None else dict(found)
            if row is not None and quarters:
                versions = {qn: (v, q) for qn, v, q in zip(
                    row.pop("quarters"), row.pop("versions"), row.pop("qualities"),
                    strict=True)}
        else:
            found = (await conn.execute(select(FRESH).where(FRESH.c.id == 1))).first()
            row = None if found is None else dict(found._mapping)
            if quarters:
                versions = {qn: (v, q) for qn, v, q in await conn.execute(
                    select(QUARTERS.c.qn, QUARTERS.c.version, QUARTERS.c.quality))}
    qn = row and row["horizon_qn"]
    horizon = qn if qn is not None else max(floor, ordinal_of_instant(datetime.now(UTC)))
    return Fresh(render.freshness_json(row, from_ordinal(horizon).label), horizon,
                 row and row["views_stamp"], versions)


class ViewCache:
    """View rows per (version, view, query, scope), one cache per API process.

    Exact without invalidation messages. Adoption and transitions derive from the register
    copy, the stage history and the facts only, and every transaction that changes those
    writes a new random ``views_stamp`` beside them: their version is the stamp, which
    observation traffic does not change. Activity also changes with every observation or
    score applied, data quality when a site's observations in a quarter start or end; both
    are cached per quarter, and every transaction that adds to a quarter's activity writes
    a new random version for that quarter (``reports_activity_quarter``), and a new
    data-quality version when it starts or ends a site's observations there: a quarter's
    activity version is the stamp and its version, its data quality's the stamp and its
    data-quality version. Readings landing in the current quarter leave earlier quarters'
    answers cached, and readings at sites already observed leave data quality cached. A
    request reads the versions first, so it can only hit rows computed at that version or
    later. Requests that miss on one key at once share one computation (``rows``): under
    traffic every new version is a miss for every request in flight, and computing it for
    each of them compounded into seconds. Bounded: one version per query (a newer one
    replaces it: under traffic a version lasts milliseconds, and a data-quality answer is
    megabytes), and cleared when ``size`` queries are held.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size, self._rows = size, {}   # query -> (version, rows)
        self._flights: dict[tuple, asyncio.Future] = {}

    async def rows(self, key: tuple, compute: Callable[[], Awaitable[Any]]) -> Any:
        """The rows cached under ``key``, else computed once however many requests ask
        meanwhile (if that computation fails, each waiting request computes its own)."""
        found = self.get(key)
        if found is not None or key[0] is None:
            return found if found is not None else await compute()
        flight = self._flights.get(key)
        if flight is not None:
            await asyncio.wait([flight])   # this request's own cancellation propagates
            return flight.result() if not flight.cancelled() else await compute()
        flight = self._flights[key] = asyncio.get_running_loop().create_future()
        try:
            rows = await compute()
        except BaseException:
            flight.cancel()
            raise
        finally:
            del self._flights[key]
        flight.set_result(rows)
        self.put(key, rows)
        return rows

    def get(self, key: tuple) -> Any:
        """``key`` is (version, *query)."""
        held = None if key[0] is None else self._rows.get(key[1:])
        return held[1] if held is not None and held[0] == key[0] else None

    def put(self, key: tuple, rows: Any) -> None:
        if key[0] is None:
            return
        if len(self._rows) >= self._size and key[1:] not in self._rows:
            self._rows.clear()
        self._rows[key[1:]] = (key[0], rows)

    def encoded(self, key: tuple, rows: Callable[[], Any]) -> bytes:
        """The JSON of the rows cached under ``key`` without its brackets (the items, comma
        separated: what a reply joins), encoded once per version (a data-quality answer can
        be most of a megabyte: encoding it took longer than the rest of a hit)."""
        at = (key[0], "json", *key[1:])   # the version first, as every key has it
        found = self.get(at)
        if found is None:
            found = to_json(rows())[1:-1]
            self.put(at, found)
        return found


def targets_for(settings: Any, programme: str) -> Ambitions:
    own = settings.ambitions.get(programme)
    return Ambitions(**own.model_dump()) if own else Ambitions()


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["views"])
    settings: Any = runtime.settings
    floor = ordinal(Quarter.parse(settings.first_quarter))
    cache = ViewCache()

    def targets(programme: str) -> Ambitions:
        return targets_for(settings, programme)

    async def programmes_of(session, programme: str | None) -> list[str]:  # noqa: ANN001
        return [programme] if programme else await queries.programmes(session)

    async def quarterly(fresh: Fresh, query: tuple, first: int, last: int,
                        compute: Callable[[int], Awaitable[list]], *, quality: bool = False
                        ) -> list[tuple[tuple, Callable[[], list]]]:
        """Each quarter's rows from the cache under that quarter's version (its activity
        version, or with ``quality`` its data-quality version), computed for the quarters
        that missed: (key, rows) per quarter, in order."""
        parts = []
        for qn in range(first, last + 1):
            key = (fresh.version(qn, quality=quality), *query, qn)
            rows = await cache.rows(key, lambda qn=qn: compute(qn))
            parts.append((key, lambda rows=rows: rows))
        return parts

    def reply(meta: dict[str, Any], parts: list[tuple[tuple, Callable[[], list]]]
              ) -> Response:
        """``{"freshness": meta, "rows": [...]}``, the rows' JSON from the cache: each part
        (a cache key, its rows) encoded once per version, the parts' rows in order, sent as
        they are (``PartsResponse``). Plain JSON types only, encoded by pydantic-core (Rust):
        ``jsonable_encoder`` cost half a view query, and the standard library's encoder four
        times as much as this."""
        body = [b'{"freshness":' + to_json(meta) + b',"rows":[']
        for items in (cache.encoded(k, r) for k, r in parts):
            if items:
                body += [b",", items] if len(body) > 1 else [items]
        body.append(b"]}")
        return render.PartsResponse(body, "application/json", render.freshness_headers(meta))

    @api.get("/registrations")
    async def registrations(
        principal: Annotated[Principal, Depends(require(Role.DASHBOARD))],
    ) -> list[dict]:
        """Sites registered per ICB, as the reports service has applied them."""
        async with runtime.db.session() as session:
            rows = (await session.exec(select(IcbRegistrations)
                                       .order_by(IcbRegistrations.icb_code))).all()
        return [r.model_dump() for r in rows]

    @api.get("/freshness")
    async def freshness(principal: Annotated[Principal, Depends(require(*READERS))]) -> dict:
        """The last event applied to the views and its age."""
        return (await freshness_of(runtime.db, floor)).meta

    @api.get("/adoption", response_model=None)
    async def adoption(q: Annotated[AdoptionQuery, Query()],
                       principal: Annotated[Principal, Depends(require(*READERS))]) -> Any:
        """Adoption by quarter: stages 0-7, >=3/>=5/>=6/=7 with numerator and denominator."""
        fresh = await freshness_of(runtime.db, floor)
        async with runtime.db.session() as session:   # connects only if a query needs it
            first, last = window(q, floor, fresh.horizon)
            allowed = await scope.allowed_codes(session, principal, q.level, q.code)
            key = (fresh.version(), "adoption", q.level, q.code, q.programme, q.tool, first,
                   last, None if allowed is None else frozenset(allowed))

            async def compute() -> list:
                area, rows = queries.Area(q.level, q.code, allowed), []
                for programme in await programmes_of(session, q.programme):
                    rows += await queries.adoption(session, area=area, programme=programme,
                                                   first=first, last=last, tool=q.tool,
                                                   targets=targets(programme), floor=floor)
                return rows
            rows = await cache.rows(key, compute)
        if q.format == "csv":
            return render.csv_response(map(render.adoption_flat, rows), "adoption.csv",
                                       fresh.meta)
        return reply(fresh.meta, [(key, lambda: [render.adoption_json(r) for r in rows])])

    @api.get("/transitions", response_model=None)
    async def transitions(q: Annotated[TransitionsQuery, Query()],
                          principal: Annotated[Principal, Depends(require(*READERS))]) -> Any:
        """Sites that moved up or down between consecutive quarter ends, stage to stage."""
        fresh = await freshness_of(runtime.db, floor)
        async with runtime.db.session() as session:   # connects only if a query needs it
            first, last = window(q, floor + 1, fresh.horizon)
            allowed = await scope.allowed_codes(session, principal, q.level, q.code)
            key = (fresh.version(), "transitions", q.level, q.code, q.programme, q.tool, first,
                   last, None if allowed is None else frozenset(allowed))

            async def compute() -> list:
                area, rows = queries.Area(q.level, q.code, allowed), []
                for programme in await programmes_of(session, q.programme):
                    for qn in range(first, last + 1):
                        found = await queries.transitions(session, area=area,
                                                          programme=programme, qn=qn,
                                                          tool=q.tool)
                        rows += [render.transitions_json(qn, q.level, programme, code, t)
                                 for code, t in found.items()]
                return rows
            rows = await cache.rows(key, compute)
        if q.format == "csv":
            flat = ({**{k: v for k, v in r.items() if k != "moves"},
                     "moves": ";".join(f"{m['from']}>{m['to']}:{m['sites']}" for m in r["moves"])}
                    for r in rows)
            return render.csv_response(flat, "transitions.csv", fresh.meta)
        return reply(fresh.meta, [(key, lambda: rows)])

    @api.get("/activity", response_model=None)
    async def activity(q: Annotated[ActivityQuery, Query()],
                       principal: Annotated[Principal, Depends(require(*READERS))]) -> Any:
        """Observation sets, residents, complete NEWS2 share, risk bands, flags, mismatches.
        Observations belong to a site, not a programme: ``programme`` applies only with one
        ``tool`` (the sites whose stage in force in that programme names it)."""
        if q.programme is not None and q.tool == ALL_TOOLS:
            raise Problem(422, "Request is not valid", "programme applies only with one tool",
                          errors=[{"field": "programme", "reason": "observations carry no "
                                   "programme: give tool= as well, or leave programme out"}])
        fresh = await freshness_of(runtime.db, floor, quarters=True)
        async with runtime.db.session() as session:   # connects only if a query needs it
            first, last = window(q, floor, fresh.horizon)
            allowed = await scope.allowed_codes(session, principal, q.level, q.code)
            scoped = None if allowed is None else frozenset(allowed)

            async def compute(qn: int) -> list:
                rows = []   # all tools: one pass, no programme; one tool: a pass per programme
                for programme in ([None] if q.tool == ALL_TOOLS
                                  else await programmes_of(session, q.programme)):
                    rows += await activity_queries.activity(
                        session, level=q.level, first=qn, last=qn, keep=allowed, code=q.code,
                        programme=programme, tool=q.tool)
                for r in rows:
                    r.pop("qn")
                    r["complete_news2"]["percent"] = render.number(
                        r["complete_news2"]["percent"])
                return rows
            parts = await quarterly(fresh, ("activity", q.level, q.code, q.programme, q.tool,
                                            scoped), first, last, compute)
        if q.format == "csv":
            return render.csv_response(map(_flatten, rows_of(parts)), "activity.csv",
                                       fresh.meta)
        return reply(fresh.meta, parts)

    @api.get("/quality", response_model=None)
    async def quality(q: Annotated[QualityQuery, Query()],
                      principal: Annotated[Principal, Depends(require(*READERS))]) -> Any:
        """Data-quality lists for each quarter asked for: the nation's, or one region's,
        PSC's or ICB's (``level`` and ``code``), every check's or one's (``check``). JSON: a
        row per quarter, programme and check, even when it lists nothing, with its ``count``
        (the whole list's), a page of its ``items`` (sites in site-id order, or PSCs for
        ``stale_pscs``: ``limit`` of them after ``offset``) and the ``next_offset`` to ask
        for (null after the last); CSV: a line per item, every item."""
        if q.level != "national" and q.code is None:
            raise Problem(422, "Request is not valid", "code is required below national level",
                          errors=[{"field": "code", "reason": "required for this level"}])
        if q.format == "csv" and (q.limit is not None or q.offset is not None):
            field = "limit" if q.limit is not None else "offset"
            raise Problem(422, "Request is not valid", "a CSV download lists every item",
                          errors=[{"field": field, "value": getattr(q, field),
                                   "reason": "pages are for JSON; CSV lists every item"}])
        area = None if q.level == "national" else (q.level, q.code)
        checks = activity_queries.CHECKS if q.check is None else (q.check,)
        page = (activity_queries.EVERY if q.format == "csv"
                else activity_queries.Page(q.limit or PAGE, q.offset or 0))
        fresh = await freshness_of(runtime.db, floor, quarters=True)
        async with runtime.db.session() as session:   # connects only if a query needs it
            first, last = window(q, floor, fresh.horizon)
            await scope.allowed_codes(session, principal, q.level, q.code)   # 403 outside
            keep = scope.psc_filter(principal)
            scoped = None if keep is None else frozenset(keep)
            sited = [check for check in checks if check != "stale_pscs"]

            async def stale(programme: str, qn: int) -> tuple[int, list[dict]]:
                found = await activity_queries.quality(
                    session, programme=programme, qn=qn, keep_psc=keep, area=area,
                    checks=("stale_pscs",), page=page)
                return found["stale_pscs"]

            async def compute(qn: int) -> list:
                rows, label = [], from_ordinal(qn).label
                for programme in await programmes_of(session, q.programme):
                    found = await activity_queries.quality(
                        session, programme=programme, qn=qn, keep_psc=keep, area=area,
                        tool=q.tool, checks=sited, page=page)
                    if "stale_pscs" in checks:   # of the returns and the register only: kept
                        # under the views stamp, which readings leave alone
                        found["stale_pscs"] = await cache.rows(
                            (fresh.version(), "stale", area, programme, scoped, page, qn),
                            lambda programme=programme: stale(programme, qn))
                    # Grouped, not a row per site: a national list names thousands of sites,
                    # and repeating quarter, programme and check in each doubled the answer.
                    rows += [{"quarter": label, "programme": programme, "check": check,
                              "count": count, "items": items,
                              "next_offset": _next(page, len(items), count)}
                             for check, (count, items) in found.items()]
                return rows
            parts = await quarterly(fresh, ("quality", area, q.programme, q.tool, scoped,
                                            checks, page),
                                    first, last, compute, quality=True)
        if q.format == "csv":
            return render.csv_response(
                ({"quarter": r["quarter"], "programme": r["programme"], "check": r["check"],
                  **item} for r in rows_of(parts) for item in r["items"]),
                "quality.csv", fresh.meta)
        return reply(fresh.meta, parts)

    return api


def _next(page: activity_queries.Page, shown: int, count: int) -> int | None:
    """The offset of a list's next page, or None if this page reaches its end."""
    after = page.offset + shown
    return after if after < count else None


def rows_of(parts: list[tuple[tuple, Callable[[], list]]]) -> list:
    return [row for _, rows in parts for row in rows()]


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out
