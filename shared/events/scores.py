"""Score events, published by scoring, keyed by resident pseudonym."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from shared.events import topics
from shared.events.envelope import Event
from shared.events.observations import SetEvent, SetWithdrawal


class ScoreComputed(SetEvent):
    """NEWS2 for one observation set, published for every observation scoring receives.

    ``total`` is None when a parameter is missing. ``status`` "rejected": scoring refused to
    score it (implausible values, unknown soft-sign codes; ``rejection`` says which field,
    value and rule), and every score field is empty. Version 2 added ``status``,
    ``rejection`` and an empty ``scale`` for rejections: deploy consumers before producers.
    """

    TYPE: ClassVar[str] = "ScoreComputed"
    TOPIC: ClassVar[str] = topics.SCORES
    VERSION: ClassVar[int] = 2

    scale: int | None
    sub_scores: dict[str, int]
    missing: tuple[str, ...] = ()
    total: int | None = None
    risk: str | None = None  # low | low-medium | medium | high
    red_score: bool = False
    monitoring: str | None = None
    soft_signs: tuple[str, ...] = ()
    client_total: int | None = None
    claim_mismatch: bool = False
    status: Literal["scored", "rejected"] = "scored"
    rejection: tuple[dict[str, str], ...] = ()


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


class ScoreWithdrawn(SetWithdrawal):
    """The score of a withdrawn observation set (``ObservationSetWithdrawn``) no longer counts.

    Published once per withdrawn set that scoring had stored, after that set's
    ``ScoreComputed`` (and ``DeteriorationFlagged``) on the same partition. It repeats what
    the withdrawn score counted - ``status``, ``total``, ``risk``, ``red_score``,
    ``claim_mismatch`` as published, and ``flag_id`` when it raised a flag, which is
    withdrawn with it - so a consumer takes exactly that back without a lookup.
    """

    TYPE: ClassVar[str] = "ScoreWithdrawn"
    TOPIC: ClassVar[str] = topics.SCORES

    status: Literal["scored", "rejected"]
    total: int | None = None
    risk: str | None = None
    red_score: bool = False
    claim_mismatch: bool = False
    flag_id: uuid.UUID | None = None
