"""The one envelope every event travels in: CloudEvents 1.0 attribute names.

``id`` is the event's identity and the consumers' dedupe key (inbox). ``subject`` carries the
partition key, so one site's (or one resident's) events stay in order on one partition.
``schemaversion`` is a CloudEvents extension attribute: consumers refuse a version newer than
the model they know rather than misread it. ``data`` is the event's fields as a dict when
``decode`` reads an envelope, and the event itself when ``shared.events.read`` does (as every
consumer does): code handed an envelope reads fields from the event, not from ``data``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json


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


class Encoded(NamedTuple):
    """An envelope already encoded by ``fast_encode``: what the outbox stores."""

    id: uuid.UUID
    type: str
    subject: str
    topic: str
    payload: str


def fast_encode(event_cls: type[Event], data: dict[str, Any], *, source: str, time: datetime,
                event_id: uuid.UUID | None = None) -> Encoded:
    """``encode(wrap(event_cls(**data), ...))`` without building either model, byte for byte
    (pydantic's own serializer; a unit test holds both to it), for hot paths building events
    from values they validated themselves: nothing here validates, so never pass it input
    from outside the process. ``data`` lists every field in the model's order.
    """
    event_id = event_id or uuid.uuid4()
    subject = str(data[event_cls.KEY_FIELD])
    payload = to_json({"id": event_id, "source": source, "type": event_cls.TYPE,
                       "specversion": "1.0", "time": time, "subject": subject,
                       "datacontenttype": "application/json",
                       "schemaversion": event_cls.VERSION, "data": data}).decode()
    return Encoded(event_id, event_cls.TYPE, subject, event_cls.TOPIC, payload)


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(raw: bytes) -> Envelope:
    return Envelope.model_validate_json(raw)
