"""Ingest's own tables. ``ingest_site`` is its copy of the register, fed by site events."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


class KnownSite(SQLModel, table=True):
    __tablename__ = "ingest_site"

    site_id: str = Field(primary_key=True, max_length=32)
    icb_code: str
    psc_code: str
    closed_on: date | None = None
    revision: int


class ObservationSetRow(SQLModel, table=True):
    """One accepted set. ``resident`` is the keyed pseudonym; the NHS number is never stored.

    Decimal values are stored as text so both dialects keep them exactly (SQLite has no
    decimal type). ``content_hash`` is a keyed MAC of the normalised content: a retry with the
    same (source platform, platform set id) is a duplicate only if it matches.

    A set is never edited: ``withdrawn_at`` marks one that no longer stands (its platform
    withdrew it, or an amendment replaced it with the set ``replaced_by``).
    """

    __tablename__ = "ingest_observation_set"
    __table_args__ = (UniqueConstraint("source_platform", "platform_set_id",
                                       name="uq_ingest_set_platform_id"),)

    id: uuid.UUID = Field(primary_key=True)
    resident: str = Field(index=True)
    site_id: str
    icb_code: str
    psc_code: str
    taken_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    source_platform: str
    platform_set_id: str | None = None
    content_hash: str
    respiration_rate: str | None = None
    spo2: str | None = None
    on_oxygen: bool | None = None
    systolic_bp: str | None = None
    pulse: str | None = None
    consciousness: str | None = None
    temperature_c: str | None = None
    spo2_scale_claim: int | None = None
    soft_signs: str = ""  # space-separated catalogue codes (codes contain no spaces)
    client_news2_total: int | None = None
    recorder: str | None = None
    withdrawn_at: datetime | None = Field(default=None,
                                          sa_column=Column(DateTime(timezone=True)))
    withdrawal_reason: str | None = None   # entered-in-error | amended | corrected
    replaced_by: uuid.UUID | None = None


class IdempotencyRow(SQLModel, table=True):
    """The first answer given under an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "ingest_idempotency"

    caller: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    request_hash: str
    status: int
    response: str
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


SETS = ObservationSetRow.__table__
IDEMPOTENCY = IdempotencyRow.__table__
