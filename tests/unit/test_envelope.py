"""The hot-path encoder writes the very bytes the pydantic path writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.events import DeteriorationFlagged, ScoreComputed, decode, encode, parse, wrap
from shared.events.envelope import Event, fast_encode

NOW = datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
TAKEN = [datetime(2024, 3, 1, 9, 30, tzinfo=UTC), datetime(2024, 6, 1, 9, 30, 0, 5, tzinfo=UTC),
         datetime(2024, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=1))),
         datetime(2024, 6, 1, 10, 30, tzinfo=timezone(timedelta(seconds=-3601)))]


def score_data(taken_at: datetime, **over: object) -> dict[str, object]:
    return {"observation_id": uuid.UUID(int=7), "resident": "p1_é\u2028x\x01", "site_id": "1-1",
            "icb_code": "QJK", "psc_code": "SW", "taken_at": taken_at, "scale": 2,
            "sub_scores": {"respiration_rate": 3, "spo2": 0}, "missing": ["pulse"],
            "total": None, "risk": None, "red_score": True, "monitoring": None,
            "soft_signs": ["R2-FLUID"], "client_total": 4, "claim_mismatch": False,
            "status": "scored", "rejection": [], **over}


def flag_data(taken_at: datetime) -> dict[str, object]:
    return {"flag_id": uuid.UUID(int=9), "observation_id": uuid.UUID(int=7), "resident": "p1_a",
            "site_id": "1-1", "icb_code": "QJK", "psc_code": "SW", "taken_at": taken_at,
            "reasons": ["band-rise", "soft-signs"], "total": 5, "risk": "medium"}


CASES = [(ScoreComputed, score_data(t)) for t in TAKEN] + [
    (ScoreComputed, score_data(TAKEN[0], total=7, risk="high", monitoring="continuous",
                               missing=[], soft_signs=[], client_total=None)),
    (ScoreComputed, score_data(TAKEN[1], status="rejected", scale=None, sub_scores={},
                               missing=[], rejection=[{"field": "spo2", "value": "101",
                                                       "reason": "above 100"}])),
    *[(DeteriorationFlagged, flag_data(t)) for t in TAKEN]]


@pytest.mark.parametrize(("cls", "data"), CASES)
def test_fast_encode_matches_the_pydantic_encoder(cls: type[Event], data: dict) -> None:
    event_id = uuid.uuid4()
    fast = fast_encode(cls, data, source="scoring", time=NOW, event_id=event_id)
    slow = wrap(cls(**data), source="scoring", event_id=event_id, time=NOW)
    assert fast.payload.encode() == encode(slow)
    assert (fast.id, fast.type, fast.subject, fast.topic) == (slow.id, slow.type, slow.subject,
                                                             cls.TOPIC)
    assert parse(decode(fast.payload.encode())) == parse(decode(encode(slow)))
