"""``shared.events.read``: ``decode`` + ``parse`` in one pass, refusing exactly what they refuse."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from shared.events import EVENT_TYPES, Envelope, UnknownEvent, decode, encode, parse, read
from tests.integration.reports.support import (
    flag,
    observation,
    score,
    score_withdrawal,
    site,
    stage,
    updated,
    withdrawal,
)

TAKEN = datetime(2023, 1, 5, 9, 30, tzinfo=UTC)
RECORDED = observation("1-1", "p1_a", TAKEN)
SCORED = score("1-1", "p1_a", TAKEN, total=5, risk="medium", of=RECORDED)
FLAGGED = flag("1-1", "p1_a", TAKEN, of=RECORDED)
EVERY_TYPE = [site("1-1"), updated("1-1", "QHL", 2), site("1-2", closed=date(2023, 2, 1)),
              stage("1-1", 5, date(2023, 1, 1)), RECORDED, withdrawal(RECORDED), SCORED, FLAGGED,
              score_withdrawal(SCORED, FLAGGED)]


def test_every_event_type_is_covered() -> None:
    assert {e.type for e in EVERY_TYPE} == set(EVENT_TYPES)


@pytest.mark.parametrize("envelope", EVERY_TYPE, ids=lambda e: e.type)
def test_read_gives_what_decode_and_parse_give(envelope: Envelope) -> None:
    raw = encode(envelope)
    got = read(raw)
    assert got is not None
    env, event = got
    assert type(event) is EVENT_TYPES[envelope.type]
    assert event == parse(decode(raw))
    assert env.data is event   # read in the same pass: the event, not a dict
    assert (env.id, env.type, env.time, env.subject, env.source, env.schemaversion) == (
        envelope.id, envelope.type, envelope.time, envelope.subject, envelope.source,
        envelope.schemaversion)
    assert read(raw, {envelope.type}) == got
    assert read(raw, {"SomethingElse"}) is None


def changed(envelope: Envelope, **over: object) -> bytes:
    """The envelope's JSON with top-level fields (or ``data`` fields, as ``data__x``) replaced."""
    d = json.loads(encode(envelope))
    for key, value in over.items():
        if key.startswith("data__"):
            d["data"][key.removeprefix("data__")] = value
        else:
            d[key] = value
    return json.dumps(d).encode()


REFUSED = [
    (b"not json", ValidationError),
    (b'{"id": "x"}', ValidationError),                              # not an envelope
    (changed(RECORDED, type="Unheard"), UnknownEvent),             # a type no model reads
    (changed(SCORED, schemaversion=3), UnknownEvent),              # newer than the model
    (changed(RECORDED, data__taken_at="yesterday"), ValidationError),
    (changed(RECORDED, data__colour="red"), ValidationError),      # extra field
    (changed(stage("1-1", 5, date(2023, 1, 1)), data__to_stage=8), ValidationError),
    (changed(RECORDED, specversion="0.3"), ValidationError),       # envelope field, typed pass
]


@pytest.mark.parametrize(("raw", "error"), REFUSED)
def test_read_refuses_what_decode_and_parse_refuse(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(decode(raw))
    with pytest.raises(error):
        read(raw)


def test_an_unwanted_type_is_skipped_unread_even_when_its_event_is_bad() -> None:
    """As the consumers did: the type decides before the event is parsed."""
    assert read(changed(RECORDED, data__taken_at="yesterday"), {"StageChanged"}) is None
    assert read(changed(RECORDED, type="Unheard"), {"StageChanged"}) is None
    with pytest.raises(ValidationError):
        read(b"not json", {"StageChanged"})
