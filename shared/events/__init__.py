"""Event schemas shared by every service: the only contract between them."""

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
    return cls.model_validate(envelope.data)


class UnknownEvent(ValueError):
    """An event this code cannot read: dead-lettered, never guessed at."""


__all__ = ["EVENT_TYPES", "Envelope", "Event", "UnknownEvent", "decode", "encode", "parse", "wrap"]
