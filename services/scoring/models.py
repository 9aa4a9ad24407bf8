"""Scoring's own tables (schema from migrations 0002-0006; models are for reads and Core writes).

- ``scoring_score``: one row per observation, unique on ``observation_id`` (a redelivered or
  re-published observation can never be scored twice). ``status`` is ``scored`` or
  ``rejected`` (implausible values or unknown soft-sign codes: recorded with the reasons in
  ``detail.rejection``, never scored). The client's claimed total sits beside ours
  (``client_total``, ``claim``, ``claim_mismatch``). A score whose observation set was
  withdrawn keeps its row and records when, why and the set that replaced it
  (``withdrawn_at``, ``withdrawal_reason``, ``replaced_by``). Complete scores
  (``total IS NOT NULL``) not withdrawn are the trend history.
- ``scoring_flag``: one per flagged observation; open until acknowledged (who, when) or
  withdrawn with its score (``withdrawn_at``).
- ``scoring_withdrawn_unscored``: withdrawals of sets scoring had not stored when they came
  (their ObservationRecorded dead-lettered, or not yet delivered); such a set is never scored.
- ``scoring_spo2_scale``: append-only history of the per-resident SpO2 scale setting; the
  setting in force for an observation is the latest row set at or before its taken-at time.
- ``scoring_resident``: the resident's current site/ICB/PSC (from the latest observation by
  taken-at), used for scope checks.
Timestamps are stored in UTC (SQLite keeps no offset; ``utc()`` re-attaches it on reads).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, Text, Uuid
from sqlmodel import Field, SQLModel

from shared.outbox import SeqType

TS = DateTime(timezone=True)


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values read back from SQLite are UTC by construction)."""
    tz = value.tzinfo
    if tz is UTC:  # what asyncpg returns: already the answer, no new object
        return value
    return value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)


class ScoreRow(SQLModel, table=True):
    __tablename__ = "scoring_score"

    observation_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    resident: str = Field(sa_column=Column(Text, nullable=False))
    site_id: str = Field(sa_column=Column(Text, nullable=False))
    icb_code: str = Field(sa_column=Column(Text, nullable=False))
    psc_code: str = Field(sa_column=Column(Text, nullable=False))
    taken_at: datetime = Field(sa_column=Column(TS, nullable=False))
    received_at: datetime = Field(sa_column=Column(TS, nullable=False))
    scored_at: datetime = Field(sa_column=Column(TS, nullable=False))
    source_platform: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    scale: int | None = Field(default=None, sa_column=Column(Integer))
    total: int | None = Field(default=None, sa_column=Column(Integer))
    risk: str | None = Field(default=None, sa_column=Column(Text))
    red_score: bool = False
    monitoring: str | None = Field(default=None, sa_column=Column(Text))
    client_total: int | None = Field(default=None, sa_column=Column(Integer))
    claim: str | None = Field(default=None, sa_column=Column(Text))
    claim_mismatch: bool = False
    flag_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(TS))
    withdrawal_reason: str | None = Field(default=None, sa_column=Column(Text))
    replaced_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    # One JSON document per row (one encode on the hot path): vitals as received (decimals
    # as strings), sub_scores, missing, soft_signs, trend reasons, rejection reasons.
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class FlagRow(SQLModel, table=True):
    __tablename__ = "scoring_flag"

    flag_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    observation_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    resident: str = Field(sa_column=Column(Text, nullable=False))
    site_id: str = Field(sa_column=Column(Text, nullable=False))
    icb_code: str = Field(sa_column=Column(Text, nullable=False))
    psc_code: str = Field(sa_column=Column(Text, nullable=False))
    taken_at: datetime = Field(sa_column=Column(TS, nullable=False))
    raised_at: datetime = Field(sa_column=Column(TS, nullable=False))
    reasons: list[str] = Field(sa_column=Column(JSON, nullable=False))
    total: int | None = Field(default=None, sa_column=Column(Integer))
    risk: str | None = Field(default=None, sa_column=Column(Text))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(TS))
    acknowledged_by: str | None = Field(default=None, sa_column=Column(Text))
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(TS))


class WithdrawnUnscoredRow(SQLModel, table=True):
    __tablename__ = "scoring_withdrawn_unscored"

    observation_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    resident: str = Field(sa_column=Column(Text, nullable=False))
    taken_at: datetime = Field(sa_column=Column(TS, nullable=False))
    withdrawn_at: datetime = Field(sa_column=Column(TS, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    replaced_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))


class Spo2ScaleRow(SQLModel, table=True):
    __tablename__ = "scoring_spo2_scale"

    id: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True,
                                                          autoincrement=True))
    resident: str = Field(sa_column=Column(Text, nullable=False))
    scale: int = Field(sa_column=Column(Integer, nullable=False))
    set_by: str = Field(sa_column=Column(Text, nullable=False))
    set_at: datetime = Field(sa_column=Column(TS, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    # the site named by a setting made before scoring had seen the resident (their scope)
    site_id: str | None = Field(default=None, sa_column=Column(Text))


class ResidentRow(SQLModel, table=True):
    __tablename__ = "scoring_resident"

    resident: str = Field(sa_column=Column(Text, primary_key=True))
    site_id: str = Field(sa_column=Column(Text, nullable=False))
    icb_code: str = Field(sa_column=Column(Text, nullable=False))
    psc_code: str = Field(sa_column=Column(Text, nullable=False))
    last_taken_at: datetime = Field(sa_column=Column(TS, nullable=False))


SCORE = ScoreRow.__table__
FLAG = FlagRow.__table__
SPO2_SCALE = Spo2ScaleRow.__table__
RESIDENT = ResidentRow.__table__
WITHDRAWN_UNSCORED = WithdrawnUnscoredRow.__table__
