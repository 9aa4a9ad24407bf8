"""Scoring's edge models: validated requests and the shapes the API answers with."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.events.observations import WithdrawalReason


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]
Code = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)]
Reading = Annotated[Decimal | None, Field(default=None, max_digits=20, decimal_places=10)]


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SITE_ID = r"^[A-Za-z0-9-]+$"   # a register code, as adoption's routes take it
SiteCode = Annotated[str, Field(min_length=1, max_length=32, pattern=SITE_ID)]


class Spo2ScaleInput(Edge):
    scale: Literal[2] = Field(description="2 = the 88-92 % target; DELETE reverts to scale 1")
    reason: Text
    site_id: SiteCode | None = Field(
        default=None, description="the home caring for the resident: needed only before "
        "their first reading (get the pseudonym from ingest's POST /residents/pseudonym)")


class Spo2ScaleOut(BaseModel):
    resident: str
    scale: int
    set_by: str | None
    set_at: datetime | None
    reason: str | None
    site_id: str | None = None   # named by a setting made before the first reading


class CalculatorInput(Edge):
    """A set of observations to score; nothing is stored. Omit a parameter if not taken."""

    respiration_rate: Reading = None
    spo2: Reading = None
    on_oxygen: bool | None = None
    systolic_bp: Reading = None
    pulse: Reading = None
    consciousness: Literal["A", "C", "V", "P", "U"] | None = None
    temperature: Reading = None
    temperature_unit: Literal["Cel", "[degF]"] = "Cel"
    spo2_scale: Literal[1, 2] = Field(
        default=1, description="2 only for a clinician checking a prescribed 88-92 % target")
    soft_signs: list[Code] = Field(default_factory=list, max_length=50)
    client_total: int | None = Field(default=None, ge=0, le=1000)


class News2Out(BaseModel):
    scale: int
    sub_scores: dict[str, int]
    total: int | None
    risk: str | None
    red_score: bool
    monitoring: str | None
    missing: list[str]
    response: str


class CalculatorOut(News2Out):
    soft_signs: list[str]
    soft_sign_prompt: str | None
    claim: str
    flag_reasons: list[str]


class WithdrawalOut(BaseModel):
    """Why a score or flag no longer counts: its observation set was withdrawn."""

    withdrawn_at: datetime
    reason: WithdrawalReason
    replaced_by: uuid.UUID | None = Field(description="the set recorded in its place, if any")


class ScoreOut(BaseModel):
    observation_id: uuid.UUID
    taken_at: datetime
    received_at: datetime
    site_id: str
    status: Literal["scored", "rejected"]
    scale: int | None
    sub_scores: dict[str, int] | None
    total: int | None
    risk: str | None
    red_score: bool
    monitoring: str | None
    missing: list[str]
    response: str | None
    soft_signs: list[str]
    client_total: int | None
    claim: str | None
    claim_mismatch: bool
    trend: list[str]
    flag_id: uuid.UUID | None
    rejection: list[dict[str, Any]] | None
    vitals: dict[str, Any] = Field(description="as received; decimals as strings")
    withdrawal: WithdrawalOut | None = Field(
        default=None, description="set when the observation set was withdrawn: the score "
        "no longer counts and is no trend history for later readings")


class FlagOut(BaseModel):
    flag_id: uuid.UUID
    observation_id: uuid.UUID
    resident: str
    site_id: str
    taken_at: datetime
    raised_at: datetime
    reasons: list[str]
    total: int | None
    risk: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    withdrawal: WithdrawalOut | None = Field(
        default=None, description="set when the flag was withdrawn with its observation set")


class SoftSignOut(BaseModel):
    code: str
    label: str
    source: str
