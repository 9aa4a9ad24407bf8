"""Stage-of-adoption events, published by adoption, keyed by site id."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from pydantic import Field

from shared.events import topics
from shared.events.envelope import Event


class StageChanged(Event):
    """A site's stage (and/or tool) for a programme changed from ``applies_from``.

    ``is_correction``: applies earlier than the latest known stage for the site and programme;
    consumers re-derive every quarter from ``applies_from`` onwards (event time, not arrival).
    ``flags``: "regression", "sustainment not evidenced", "correction".
    """

    TYPE: ClassVar[str] = "StageChanged"
    TOPIC: ClassVar[str] = topics.STAGES
    KEY_FIELD: ClassVar[str] = "site_id"

    submission_id: uuid.UUID
    site_id: str
    icb_code: str
    psc_code: str
    programme: str
    from_tool: str | None
    from_stage: int | None = Field(default=None, ge=0, le=7)
    to_tool: str | None
    to_stage: int = Field(ge=0, le=7)
    applies_from: date
    reported_at: datetime
    reporter: str
    is_correction: bool = False
    flags: tuple[str, ...] = ()
