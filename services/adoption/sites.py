"""Site register handlers: register or update a site and publish what changed.

A site's ``revision`` increases by one with every change and travels in its events, so a
consumer keeping a copy applies an event only when its revision is newer than the copy's
(order-tolerant even if a retried publish lands late). An unchanged submission writes nothing
and publishes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from services.adoption.models import Icb, Site
from shared.auth import Principal
from shared.events.sites import SiteClosed, SiteFacts, SiteRegistered, SiteUpdated
from shared.outbox import add_events
from shared.problems import Problem

SOURCE = "/mandet/adoption"
SITE_ID = r"^(1-[0-9]{1,12}|[A-Z0-9]{3,10})$"

SettingType = Literal["care_home", "mental_health_ward", "maternity_unit", "trust",
                      "gp_practice", "other"]


class SiteInput(BaseModel):
    """A site as submitted: code, ICB and facts. The PSC and region come from the ICB."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site_id: str = Field(pattern=SITE_ID, description="CQC location id (1-...) or ODS code")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    setting_type: SettingType = "care_home"
    icb_code: str = Field(pattern=r"^[A-Z0-9]{3}$")
    beds: int | None = Field(default=None, ge=0, le=5000)
    nursing: bool | None = None
    opened_on: date | None = None
    closed_on: date | None = None
    successor_id: str | None = Field(default=None, pattern=SITE_ID)


class SiteOut(BaseModel):
    site_id: str
    name: str
    setting_type: str
    icb_code: str
    psc_code: str
    region: str
    beds: int | None
    nursing: bool | None
    opened_on: date | None
    closed_on: date | None
    successor_id: str | None
    revision: int


Outcome = Literal["created", "updated", "unchanged"]
FACT_FIELDS = ("name", "setting_type", "icb_code", "psc_code", "region", "beds", "nursing",
               "opened_on", "closed_on", "successor_id")


async def register_site(
    session: AsyncSession, data: SiteInput, *, by: Principal
) -> tuple[Site, Outcome]:
    """Create or update a site (caller commits). Publishes SiteRegistered/Updated/Closed."""
    icb = await session.get(Icb, data.icb_code)
    if icb is None:
        raise Problem(422, "Unknown ICB", errors=[{"field": "icb_code", "value": data.icb_code,
                                                   "reason": "not a known ICB ODS code"}])
    site = await session.get(Site, data.site_id)
    check_scope(data, icb, site, by)
    site, outcome, kind = apply_facts(site, facts_of(data, icb))
    if outcome == "created":
        session.add(site)
    if kind is not None:
        await session.flush()
        await add_events(session, [event_of(kind, site)], source=SOURCE)
    return site, outcome


def check_scope(data: SiteInput, icb: Icb, site: Site | None, by: Principal) -> None:
    """The caller must cover the site where it is going and, if known, where it is now."""
    by.require_site(data.site_id, icb.code, icb.psc_code)
    if site is not None:  # may not move others' sites into one's own PSC
        by.require_site(site.site_id, site.icb_code, site.psc_code)


def facts_of(data: SiteInput, icb: Icb) -> dict[str, Any]:
    """A submission's facts with the PSC and region its ICB gives."""
    return {**data.model_dump(), "psc_code": icb.psc_code, "region": icb.region}


def apply_facts(site: Site | None, facts: dict[str, Any]
                ) -> tuple[Site, Outcome, type[SiteFacts] | None]:
    """The site after `facts`, what happened, and the event to publish (None if unchanged)."""
    if site is None:
        site = Site(revision=1, updated_at=_now(), **facts)
        return site, "created", SiteRegistered
    if all(getattr(site, k) == facts[k] for k in FACT_FIELDS):
        return site, "unchanged", None
    newly_closed = site.closed_on is None and facts["closed_on"] is not None
    for k in FACT_FIELDS:
        setattr(site, k, facts[k])
    site.revision += 1
    site.updated_at = _now()
    return site, "updated", SiteClosed if newly_closed else SiteUpdated


def event_of(kind: type[SiteFacts], site: Site) -> SiteFacts:
    return kind(site_id=site.site_id, revision=site.revision,
                **{k: getattr(site, k) for k in FACT_FIELDS})


async def get_site(session: AsyncSession, site_id: str, *, by: Principal) -> Site:
    site = await session.get(Site, site_id)
    if site is None:
        raise Problem(404, "Not Found", f"no site with code {site_id}")
    by.require_site(site.site_id, site.icb_code, site.psc_code)
    return site


async def list_sites(session: AsyncSession, *, by: Principal, icb: str | None, psc: str | None,
                     limit: int, offset: int) -> list[Site]:
    query = select(Site).order_by(Site.site_id)
    if icb:
        query = query.where(Site.icb_code == icb)
    if psc:
        query = query.where(Site.psc_code == psc)
    query = in_scope(query, by)
    return list((await session.exec(query.offset(offset).limit(limit))).all())


def in_scope(query: SelectOfScalar, by: Principal) -> SelectOfScalar:
    """Restrict a query over sites to the caller's scope (admin and dashboard: everything)."""
    if by.covers_site("", None, None):
        return query
    return query.where(
        Site.site_id.in_(by.sites) | Site.icb_code.in_(by.icbs) | Site.psc_code.in_(by.pscs)
    )


def _now() -> datetime:
    return datetime.now(UTC)
