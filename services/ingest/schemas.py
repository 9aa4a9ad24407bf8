"""Edge models of the native JSON API (non-table pydantic models; the tables skip validation).

Strings refuse NUL (PostgreSQL text cannot hold it), numbers refuse NaN and Infinity and have
bounded digits, unknown fields are refused. The NHS number is accepted as a string or an
integer here and checked by the domain code, whose errors never echo the number.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

NoNul = r"^[^\x00]*$"
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NoNul)]
Value = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=12, decimal_places=6)]
SoftSign = Annotated[str, Field(min_length=1, max_length=40, pattern=NoNul)]
MAX_BATCH = 1000


def _nhs_text(value: Any) -> Any:
    # Coerce rather than fail: a pydantic error would echo the input, i.e. the number.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else "x"


def _bounded(value: str) -> str:
    if len(value) > 20 or "\x00" in value:  # no echo: the domain check reports it later
        return "x"
    return value


NhsText = Annotated[str, BeforeValidator(_nhs_text), AfterValidator(_bounded)]


SiteId = Annotated[str, Field(min_length=3, max_length=32,
                              pattern=r"^(1-[0-9]{1,12}|[A-Z0-9]{3,10})$")]


class ObservationSetIn(BaseModel):
    """One set of observations of one resident at one time, as a platform sends it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    nhs_number: NhsText | None = None
    local_id: Text | None = Field(default=None, description="the platform's own resident id")
    site_id: SiteId
    taken_at: AwareDatetime
    respiration_rate: Value | None = None
    spo2: Value | None = None
    on_oxygen: bool | None = None
    systolic_bp: Value | None = None
    pulse: Value | None = None
    consciousness: Literal["A", "C", "V", "P", "U"] | None = None
    temperature: Value | None = None
    temperature_unit: Literal["C", "F"] = "C"
    spo2_scale_claim: Literal[1, 2] | None = None
    soft_signs: list[SoftSign] = Field(default_factory=list, max_length=50)
    client_news2_total: int | None = Field(default=None, ge=0, le=20)
    recorder: Text | None = None
    source_platform: Text | None = Field(default=None, description="defaults to the token's sub")
    platform_set_id: Text | None = None


class AmendingSetIn(ObservationSetIn):
    """A set mapped from FHIR, one of whose Observations has status ``amended`` or
    ``corrected``: it says it replaces a reading sent before, which it does when its
    platform recorded one for the same resident at the same time (``observations`` says
    how). Not a native API model: the native routes refuse the ``amends`` field as
    unknown; a native set entered in error is withdrawn instead."""

    amends: Literal["amended", "corrected", "entered-in-error"]
    withdraws: list[Literal["respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse",
                            "consciousness", "temperature_c"]] = Field(
        default_factory=list, description="parameters of the recorded set entered in error")


class BatchIn(BaseModel):
    """Up to 1,000 sets; each item is validated on its own so one bad item sinks nothing else."""

    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class SetResult(BaseModel):
    index: int
    outcome: Literal["accepted", "duplicate", "rejected"]
    id: uuid.UUID | None = None
    status: int
    errors: list[dict[str, Any]] | None = None


class BatchOut(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[SetResult]


class RecordedOut(BaseModel):
    id: uuid.UUID
    outcome: Literal["accepted", "duplicate"]


class ObservationSetOut(BaseModel):
    """A stored set as read back: pseudonym only, never the NHS number."""

    id: uuid.UUID
    resident: str
    site_id: str
    icb_code: str
    psc_code: str
    taken_at: datetime
    received_at: datetime
    source_platform: str
    platform_set_id: str | None
    respiration_rate: Decimal | None
    spo2: Decimal | None
    on_oxygen: bool | None
    systolic_bp: Decimal | None
    pulse: Decimal | None
    consciousness: str | None
    temperature_c: Decimal | None
    spo2_scale_claim: int | None
    soft_signs: list[str]
    client_news2_total: int | None
    recorder: str | None
    withdrawn_at: datetime | None = None
    withdrawal_reason: Literal["entered-in-error", "amended", "corrected"] | None = None
    replaced_by: uuid.UUID | None = None


class ResidentIn(BaseModel):
    """A resident, by NHS number or a platform's own id, at the home caring for them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    nhs_number: NhsText | None = None
    local_id: Text | None = Field(default=None, description="a platform's own resident id")
    source_platform: Text | None = Field(
        default=None, description="whose local_id it is; defaults to the token's sub")
    site_id: SiteId


class PseudonymOut(BaseModel):
    """The id every other service knows the resident by (never the NHS number)."""

    pseudonym: str
    site_id: str
