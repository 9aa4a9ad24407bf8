"""Observation events, published by ingest, keyed by resident pseudonym.

The NHS number never appears here: ``resident`` is ingest's keyed pseudonym. Values are in
normalised units (temperature in °C, converted exactly with Decimal), *not* quantised: the
scoring core quantises. Decimals travel as JSON strings so no binary float touches them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from shared.events import topics
from shared.events.envelope import Event


class ObservationRecorded(Event):
    TYPE: ClassVar[str] = "ObservationRecorded"
    TOPIC: ClassVar[str] = topics.OBSERVATIONS
    KEY_FIELD: ClassVar[str] = "resident"

    observation_id: uuid.UUID
    resident: str = Field(description="keyed pseudonym (p1_... NHS number, l1_... local id)")
    site_id: str
    icb_code: str
    psc_code: str
    taken_at: datetime
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
