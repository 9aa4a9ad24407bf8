"""Adoption's own tables (no other service reads them; they learn sites from events)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Column, DateTime, Uuid
from sqlmodel import Field, SQLModel

from shared.outbox import SeqType


class Icb(SQLModel, table=True):
    __tablename__ = "adoption_icb"

    code: str = Field(primary_key=True, max_length=3)  # ODS code, e.g. QHL
    name: str
    short_name: str
    region: str
    psc_code: str = Field(index=True)
    psc_name: str


class Site(SQLModel, table=True):
    """A care home (CQC location id) or another setting (ODS code), by stable code."""

    __tablename__ = "adoption_site"

    site_id: str = Field(primary_key=True, max_length=32)
    name: str
    setting_type: str
    icb_code: str = Field(foreign_key="adoption_icb.code", index=True)
    psc_code: str = Field(index=True)
    region: str
    beds: int | None = None
    nursing: bool | None = None
    opened_on: date | None = None
    closed_on: date | None = None
    successor_id: str | None = None
    revision: int = 1
    updated_at: datetime


class Programme(SQLModel, table=True):
    """A programme on the 0-7 adoption scale (reference data, added without code changes)."""

    __tablename__ = "adoption_programme"

    code: str = Field(primary_key=True, max_length=64)
    name: str


class Tool(SQLModel, table=True):
    """A tool a programme reports; ``also_known_as`` is the name used in the field."""

    __tablename__ = "adoption_tool"

    programme_code: str = Field(primary_key=True, foreign_key="adoption_programme.code")
    name: str = Field(primary_key=True, max_length=100)
    also_known_as: str | None = None
    position: int = 0


class StageReport(SQLModel, table=True):
    """One accepted stage report, with the transition it made when it was accepted."""

    __tablename__ = "adoption_stage_report"

    id: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True,
                                                          autoincrement=True))
    submission_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    site_id: str = Field(foreign_key="adoption_site.site_id", index=True)
    programme: str = Field(foreign_key="adoption_programme.code")
    tool: str | None = None
    stage: int
    applies_from: date
    note: str | None = None
    reported_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reporter: str
    from_tool: str | None = None
    from_stage: int
    is_correction: bool = False
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
