"""Event schemas shared by every service: the only contract between them."""

from collections.abc import Container
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, ValidationError, create_model

from shared.events.envelope import Envelope, Event, decode, encode, wrap
from shared.events.observations import ObservationRecorded, ObservationSetWithdrawn
from shared.events.scores import DeteriorationFlagged, ScoreComputed, ScoreWithdrawn
from shared.events.sites import SiteClosed, SiteRegistered, SiteUpdated
from shared.events.stages import StageChanged

EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (SiteRegistered, SiteUpdated, SiteClosed, StageChanged, ObservationRecorded,
                ObservationSetWithdrawn, ScoreComputed, DeteriorationFlagged, ScoreWithdrawn)
}


def parse(envelope: Envelope) -> Event:
    """The typed event inside an envelope; refuses unknown types and newer versions."""
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        raise UnknownEvent(f"unknown event type {envelope.type!r}")
    if envelope.schemaversion > cls.VERSION:
        raise UnknownEvent(
            f"{envelope.type} schema version {envelope.schemaversion} is newer than {cls.VERSION}"
        )
    data = envelope.data
    return data if type(data) is cls else cls.model_validate(data)   # ``read`` typed it


class UnknownEvent(ValueError):
    """An event this code cannot read: dead-lettered, never guessed at."""


def read(raw: bytes, wanted: Container[str] | None = None) -> tuple[Envelope, Event] | None:
    """``decode`` then ``parse`` in one pydantic pass: (envelope, event), or None when the
    envelope's type is not ``wanted``. Raises exactly as the two would: a message the one
    pass refuses (not an envelope, an unknown type, a bad field) takes their path and is
    refused there, or read there if only the one pass refused it (JSON and Python
    validation may differ at the edges; the two-step reading is the contract). The
    envelope's ``data`` is then the event itself, not a dict: read fields from the event.
    One pydantic call an event instead of two: the rebuild from the broker (136,260 site and
    stage messages) took 2.8-3.1 CPU s instead of 3.4-3.7 (alternated runs).
    """
    try:
        envelope = _TYPED.validate_json(raw)
    except ValidationError:
        envelope = decode(raw)
    if wanted is not None and envelope.type not in wanted:
        return None
    return envelope, parse(envelope)   # checks the version; an event passes through as is


def _typed_envelope(cls: type[Event]) -> type[Envelope]:
    return create_model(f"{cls.__name__}Envelope", __base__=Envelope,
                        type=(Literal[cls.TYPE], ...), data=(cls, ...))  # type: ignore[call-overload]


_TYPED: TypeAdapter[Envelope] = TypeAdapter(Annotated[
    Union[tuple(_typed_envelope(cls) for cls in EVENT_TYPES.values())],  # noqa: UP007
    Field(discriminator="type")])


__all__ = ["EVENT_TYPES", "Envelope", "Event", "UnknownEvent", "decode", "encode", "parse", "read",
           "wrap"]
