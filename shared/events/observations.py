"""Observation events, published by ingest, keyed by resident pseudonym.

The NHS number never appears here: ``resident`` is ingest's keyed pseudonym. Values are in
normalised units (temperature in °C, converted exactly with Decimal), *not* quantised: the
scoring core quantises. Decimals travel as JSON strings so no binary float touches them.

A recorded set is never edited. When it stops standing - the platform says it was entered in
error, or a FHIR ``amended``/``corrected`` reading replaces it - ingest publishes
``ObservationSetWithdrawn`` for it (and, for an amendment, ``ObservationRecorded`` for the set
recorded in its place). Consumers take back what the withdrawn set counted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from shared.events import topics
from shared.events.envelope import Event


class SetEvent(Event):
    """A fact about one resident's observation set: which set, whose, where and when it was
    taken. Keyed by resident, so all of a resident's set events share one partition."""

    KEY_FIELD: ClassVar[str] = "resident"

    observation_id: uuid.UUID
    resident: str = Field(description="keyed pseudonym (p1_... NHS number, l1_... local id)")
    site_id: str
    icb_code: str
    psc_code: str
    taken_at: datetime


class ObservationRecorded(SetEvent):
    TYPE: ClassVar[str] = "ObservationRecorded"
    TOPIC: ClassVar[str] = topics.OBSERVATIONS

    received_at: datetime
    source_platform: str
    platform_set_id: str | None = None
    respiration_rate: Decimal | None = None
    spo2: Decimal | None = None
    on_oxygen: bool | None = None
    systolic_bp: Decimal | None = None
    pulse: Decimal | None = None
    consciousness: Literal["A", "C", "V", "P", "U"] | None = None
    temperature_c: Decimal | None = None
    spo2_scale_claim: Literal[1, 2] | None = None
    soft_signs: tuple[str, ...] = ()
    client_news2_total: int | None = None
    recorder: str | None = None


WithdrawalReason = Literal["entered-in-error", "amended", "corrected"]


class SetWithdrawal(SetEvent):
    """A set, or what was derived from it, no longer stands: when, why, and the set recorded
    in its place (``amended`` / ``corrected``; None when it was entered in error)."""

    withdrawn_at: datetime
    reason: WithdrawalReason
    replaced_by: uuid.UUID | None = None


class ObservationSetWithdrawn(SetWithdrawal):
    """A recorded set no longer stands: what it counted must be taken back.

    Published at most once per set (ingest marks the set withdrawn in the same transaction),
    after its ``ObservationRecorded`` on the same partition. Carries the set's site, area
    codes and ``taken_at`` as recorded, so a consumer can undo its effect without a lookup.
    """

    TYPE: ClassVar[str] = "ObservationSetWithdrawn"
    TOPIC: ClassVar[str] = topics.OBSERVATIONS

    source_platform: str
