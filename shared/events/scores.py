"""Score events, published by scoring, keyed by resident pseudonym."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from shared.events import topics
from shared.events.envelope import Event


class ScoreComputed(Event):
    """NEWS2 for one observation set. ``total`` is None when a parameter is missing."""

    TYPE: ClassVar[str] = "ScoreComputed"
    TOPIC: ClassVar[str] = topics.SCORES
    KEY_FIELD: ClassVar[str] = "resident"

    observation_id: uuid.UUID
    resident: str
    site_id: str
    icb_code: str
    psc_code: str
    taken_at: datetime
    scale: int
    sub_scores: dict[str, int]
    missing: tuple[str, ...] = ()
    total: int | None = None
    risk: str | None = None  # low | low-medium | medium | high
    red_score: bool = False
    monitoring: str | None = None
    soft_signs: tuple[str, ...] = ()
    client_total: int | None = None
    claim_mismatch: bool = False


class DeteriorationFlagged(Event):
    """Raised when the band is low-medium or worse, soft signs are present, or the trend fired."""

    TYPE: ClassVar[str] = "DeteriorationFlagged"
    TOPIC: ClassVar[str] = topics.SCORES
    KEY_FIELD: ClassVar[str] = "resident"

    flag_id: uuid.UUID
    observation_id: uuid.UUID
    resident: str
    site_id: str
    icb_code: str
    psc_code: str
    taken_at: datetime
    reasons: tuple[str, ...]
    total: int | None = None
    risk: str | None = None
