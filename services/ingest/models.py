"""Ingest's own tables. ``ingest_site`` is its copy of the register, fed by site events."""

from __future__ import annotations

from datetime import date

from sqlmodel import Field, SQLModel


class KnownSite(SQLModel, table=True):
    __tablename__ = "ingest_site"

    site_id: str = Field(primary_key=True, max_length=32)
    icb_code: str
    psc_code: str
    closed_on: date | None = None
    revision: int
