"""Adoption's own tables (no other service reads them; they learn sites from events)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel


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
