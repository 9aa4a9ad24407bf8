"""The directly encoded ``ObservationRecorded`` envelope equals the pydantic-built one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.ingest.events import SOURCE, encoded_events, recorded_data, recorded_event
from shared.events import ObservationRecorded, decode, encode, parse, wrap
from shared.events.envelope import fast_encode

RECEIVED = datetime(2026, 3, 1, 9, 30, 5, 123456, tzinfo=UTC)
SENT = datetime(2026, 3, 1, 9, 30, 6, 500000, tzinfo=UTC)


def _row(**changes: object) -> dict[str, object]:
    row = {"id": uuid.UUID("6f1c1d6e-8a3b-4c55-9d1e-1a2b3c4d5e6f"), "resident": "p1_" + "a" * 32,
           "site_id": "1-5868490225", "icb_code": "QJK", "psc_code": "SW",
           "taken_at": datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1))),
           "received_at": RECEIVED, "source_platform": "carely", "platform_set_id": "s-1",
           "respiration_rate": "18", "spo2": "96", "on_oxygen": False, "systolic_bp": "120",
           "pulse": "72", "consciousness": "A", "temperature_c": "37.5",
           "spo2_scale_claim": 2, "soft_signs": "3f7c1a2b 9e8d7c6b", "client_news2_total": 1,
           "recorder": "Nurse Ödön", "content_hash": "x" * 32}
    return {**row, **changes}


@pytest.mark.parametrize("changes", [
    {},
    {"respiration_rate": None, "spo2": None, "on_oxygen": None, "consciousness": None,
     "temperature_c": "36.55555555555555555555555556", "spo2_scale_claim": None,
     "soft_signs": "", "client_news2_total": None, "recorder": None, "platform_set_id": None},
    {"taken_at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC), "resident": "l1_" + "b" * 32},
])
def test_direct_encoding_matches_the_models(changes: dict[str, object]) -> None:
    row = _row(**changes)
    event_id = uuid.uuid4()
    direct = fast_encode(ObservationRecorded, recorded_data(row), source=SOURCE, time=SENT,
                         event_id=event_id)
    reference = encode(wrap(recorded_event(row), source=SOURCE, event_id=event_id, time=SENT))
    assert direct.payload.encode() == reference  # byte for byte
    assert parse(decode(direct.payload.encode())) == recorded_event(row)
    assert list(recorded_data(row)) == list(ObservationRecorded.model_fields)


def test_one_event_per_set_keyed_by_resident_without_the_nhs_number() -> None:
    events = encoded_events([_row(), _row(resident="p1_" + "c" * 32)], SENT)
    assert [e.subject for e in events] == ["p1_" + "a" * 32, "p1_" + "c" * 32]
    assert {(e.type, e.topic) for e in events} == {("ObservationRecorded",
                                                     "ingest.observations")}
    assert events[0].id != events[1].id
    assert str(events[0].id) in events[0].payload
    assert "nhs_number" not in events[0].payload
