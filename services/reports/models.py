"""Reports' own tables: its copy of the register and the views it maintains."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import DateTime, Index
from sqlmodel import Field, SQLModel


class ReportSite(SQLModel, table=True):
    __tablename__ = "reports_site"

    site_id: str = Field(primary_key=True, max_length=32)
    icb_code: str = Field(index=True)
    psc_code: str
    region: str
    opened_on: date | None = None
    closed_on: date | None = None
    revision: int


class IcbRegistrations(SQLModel, table=True):
    """Sites registered per ICB: an additive view, so a double-applied event would show."""

    __tablename__ = "reports_icb_registrations"

    icb_code: str = Field(primary_key=True)
    sites_registered: int = 0


class StageRecord(SQLModel, table=True):
    """Every StageChanged applied, keyed by event id (the full history the facts derive from)."""

    __tablename__ = "reports_stage_record"
    __table_args__ = (Index("ix_reports_stage_record_series", "site_id", "programme"),)

    event_id: str = Field(primary_key=True, max_length=36)
    site_id: str = Field(max_length=32)
    psc_code: str
    programme: str
    tool: str | None = None
    stage: int
    applies_from: date
    reported_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class LatestReturn(SQLModel, table=True):
    """The newest ``reported_at`` among each PSC's stage records, per programme (data
    quality's stale returns): kept with the records, a maximum, so any order gives it."""

    __tablename__ = "reports_latest_return"

    programme: str = Field(primary_key=True)
    psc_code: str = Field(primary_key=True)
    reported_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class StageFact(SQLModel, table=True):
    """Stage in force at a quarter end for an open, reported site (the adoption view's base).

    Open sites with no fact are at stage 0; area codes are the register's current ones.
    """

    __tablename__ = "reports_stage_fact"
    __table_args__ = (Index("ix_reports_stage_fact_quarter", "programme", "qn", "stage"),)

    site_id: str = Field(primary_key=True, max_length=32)
    programme: str = Field(primary_key=True)
    qn: int = Field(primary_key=True)
    tool: str | None = None
    stage: int
    icb_code: str
    psc_code: str
    region: str


class Freshness(SQLModel, table=True):
    """One row: the last event applied and the quarter horizon the facts reach."""

    __tablename__ = "reports_freshness"

    id: int = Field(default=1, primary_key=True)
    event_id: str | None = None
    event_type: str | None = None
    event_time: datetime | None = Field(default=None,  # type: ignore[call-overload]
                                        sa_type=DateTime(timezone=True))
    applied_at: datetime | None = Field(default=None,  # type: ignore[call-overload]
                                        sa_type=DateTime(timezone=True))
    horizon_qn: int | None = None
    # A fresh random value in every transaction that changes the register copy, the stage
    # history or the facts (never a counter: a rebuild starts over, and a reused value would
    # revive a reader's stale cache). See ``api.ViewCache``.
    views_stamp: str | None = Field(default=None, max_length=32)


class ActivityCounters(SQLModel):
    """What activity counts (additive; inbox-deduplicated; a withdrawal subtracts: see
    ``activity``)."""

    observation_sets: int = 0
    scored_sets: int = 0
    complete_sets: int = 0
    risk_low: int = 0
    risk_low_medium: int = 0
    risk_medium: int = 0
    risk_high: int = 0
    red_scores: int = 0
    flags: int = 0
    claim_mismatches: int = 0
    residents: int = 0   # residents with a standing set (``ActivityResident.sets`` > 0)


class SiteQuarter(SQLModel):
    site_id: str = Field(primary_key=True, max_length=32)
    qn: int = Field(primary_key=True)
    icb_code: str
    psc_code: str


class Activity(ActivityCounters, SiteQuarter, table=True):
    """Activity per site and quarter, under the area codes it is rolled up by: the
    register's, or for a site the register copy does not hold yet its first event's.
    (Bases in this order so the key columns come first.)"""

    __tablename__ = "reports_activity"


class AreaQuarter(SQLModel):
    level: str = Field(primary_key=True, max_length=16)
    qn: int = Field(primary_key=True)
    code: str = Field(primary_key=True)


class ActivityArea(ActivityCounters, AreaQuarter, table=True):
    """``Activity`` summed per quarter and area (national, ICB, PSC), kept in step with it
    and with the register in the same transaction (see ``activity``). Rows may reach 0."""

    __tablename__ = "reports_activity_area"


class ToolAreaQuarter(SQLModel):
    programme: str = Field(primary_key=True)
    tool: str = Field(primary_key=True)
    level: str = Field(primary_key=True, max_length=16)
    qn: int = Field(primary_key=True)
    code: str = Field(primary_key=True)


class ActivityTool(ActivityCounters, ToolAreaQuarter, table=True):
    """``Activity`` summed per programme, tool, quarter and area (national, ICB, PSC): the
    site rows whose stage in force at that quarter's end in that programme names the tool
    (``reports_stage_fact``), kept in step with both in the same transaction (see
    ``activity``). Rows may reach 0."""

    __tablename__ = "reports_activity_tool"


class ActivityQuarter(SQLModel, table=True):
    """A fresh random ``version`` for a quarter in every transaction that adds to its
    activity rows (``activity.add_many``), and a fresh ``quality`` in those that start or
    end a site's observations in it (a site's sets there rise from 0, or fall to 0): the
    API caches the quarter's activity under the first and its data quality under the second,
    so readings landing in one quarter leave the others' cached answers standing, and
    further readings at a site already observed leave its data quality standing
    (ARCHITECTURE.md, invariant 13). No row, or no ``quality``: unchanged since the views
    stamp."""

    __tablename__ = "reports_activity_quarter"

    qn: int = Field(primary_key=True)
    version: str = Field(max_length=32)
    quality: str | None = Field(default=None, max_length=32)


class ActivityResident(SQLModel, table=True):
    """A resident's standing observation sets per site and quarter (pseudonyms only),
    additive like ``Activity``: the resident counts as observed there while ``sets`` > 0."""

    __tablename__ = "reports_activity_resident"

    site_id: str = Field(primary_key=True, max_length=32)
    qn: int = Field(primary_key=True)
    resident: str = Field(primary_key=True)
    sets: int = 1


class StageCount(SQLModel, table=True):
    """Facts counted per (programme, quarter, level, area code, tool, stage).

    Kept in step with ``reports_stage_fact`` in the same transaction (deltas of the facts a
    refresh removes and adds); tool is "" when the record names none. Rows may reach 0.
    """

    __tablename__ = "reports_stage_count"

    programme: str = Field(primary_key=True)
    qn: int = Field(primary_key=True)
    level: str = Field(primary_key=True, max_length=16)
    code: str = Field(primary_key=True)
    tool: str = Field(primary_key=True)
    stage: int = Field(primary_key=True)
    sites: int


class QualitySite(SQLModel, table=True):
    """A site on a data-quality list (``quality``), as the list's item: ``kind`` is the check
    (``stage5_without_observations`` or ``observations_below_stage4``), ``stage``, ``tool``
    and the codes those the lists show and filter by (the fact's for the first check; for
    the second the activity row's codes, the register copy's region, and the fact's stage,
    0 without one). Kept for the quarters activity has rows in (``reports_activity_quarter``)
    and the programmes with returns (``reports_latest_return``), in step with the facts, the
    activity rows and the register copy in the same transaction, so a page is a range of
    this key in site order."""

    __tablename__ = "reports_quality_site"

    programme: str = Field(primary_key=True)
    qn: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=32)
    site_id: str = Field(primary_key=True, max_length=32)
    stage: int
    tool: str | None = None
    icb_code: str
    psc_code: str
    region: str | None = None


class QualityCount(SQLModel, table=True):
    """How many sites each ``QualitySite`` list holds nationally (kept with its rows; rows
    may reach 0)."""

    __tablename__ = "reports_quality_count"

    programme: str = Field(primary_key=True)
    qn: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=32)
    sites: int = 0
