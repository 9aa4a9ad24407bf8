"""The one envelope every event travels in: CloudEvents 1.0 attribute names.

``id`` is the event's identity and the consumers' dedupe key (inbox). ``subject`` carries the
partition key, so one site's (or one resident's) events stay in order on one partition.
``schemaversion`` is a CloudEvents extension attribute: consumers refuse a version newer than
the model they know rather than misread it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """A past-tense fact. Subclasses set TYPE, TOPIC, VERSION and say which field is the key."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    VERSION: ClassVar[int] = 1
    KEY_FIELD: ClassVar[str]

    def key(self) -> str:
        return str(getattr(self, self.KEY_FIELD))


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    source: str
    type: str
    specversion: Literal["1.0"] = "1.0"
    time: datetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    schemaversion: int = Field(ge=1)
    data: dict[str, Any]


def wrap(
    event: Event,
    *,
    source: str,
    event_id: uuid.UUID | None = None,
    time: datetime | None = None,
) -> Envelope:
    """Put an event in its envelope; the id defaults to a fresh UUID (dedupe key)."""
    return Envelope(
        id=event_id or uuid.uuid4(),
        source=source,
        type=event.TYPE,
        time=time or datetime.now(UTC),
        subject=event.key(),
        schemaversion=event.VERSION,
        data=event.model_dump(mode="json"),
    )


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(raw: bytes) -> Envelope:
    return Envelope.model_validate_json(raw)
