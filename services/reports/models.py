"""Reports' own tables: its copy of the register and the views it maintains."""

from __future__ import annotations

from datetime import date

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
