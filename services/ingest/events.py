"""``ObservationRecorded`` events of stored sets, encoded directly (the batch hot path).

Building each event through two pydantic models (the event, its envelope) cost more CPU than
the database work at 1,000 sets per request. ``recorded_data`` lists the event's fields in the
model's order from the stored row (validated and normalised already), and the shared
``fast_encode`` writes the envelope byte for byte as ``encode(wrap(...))`` would; the unit
tests hold it to ``recorded_event``. Decimals travel as the stored normalised text.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.events import ObservationRecorded
from shared.events.envelope import Encoded, fast_encode

SOURCE = "/mandet/ingest"
_DECIMALS = ("respiration_rate", "spo2", "systolic_bp", "pulse", "temperature_c")


def recorded_event(row: dict[str, Any]) -> ObservationRecorded:
    """The published fact as a model (the reference the direct encoding must match)."""
    values = {k: Decimal(row[k]) if row[k] is not None else None for k in _DECIMALS}
    return ObservationRecorded(
        observation_id=row["id"], resident=row["resident"], site_id=row["site_id"],
        icb_code=row["icb_code"], psc_code=row["psc_code"], taken_at=row["taken_at"],
        received_at=row["received_at"], source_platform=row["source_platform"],
        platform_set_id=row["platform_set_id"], on_oxygen=row["on_oxygen"],
        consciousness=row["consciousness"], spo2_scale_claim=row["spo2_scale_claim"],
        soft_signs=tuple(row["soft_signs"].split()), client_news2_total=row["client_news2_total"],
        recorder=row["recorder"], **values)


def encoded_events(rows: list[dict[str, Any]], time: datetime) -> list[Encoded]:
    """One encoded ``ObservationRecorded`` envelope per stored row."""
    return [fast_encode(ObservationRecorded, recorded_data(row), source=SOURCE, time=time)
            for row in rows]


def recorded_data(row: dict[str, Any]) -> dict[str, Any]:
    """The event's fields, in ``ObservationRecorded``'s order, from a stored row."""
    return {
        "observation_id": row["id"], "resident": row["resident"],
        "site_id": row["site_id"], "icb_code": row["icb_code"], "psc_code": row["psc_code"],
        "taken_at": row["taken_at"], "received_at": row["received_at"],
        "source_platform": row["source_platform"], "platform_set_id": row["platform_set_id"],
        "respiration_rate": row["respiration_rate"], "spo2": row["spo2"],
        "on_oxygen": row["on_oxygen"], "systolic_bp": row["systolic_bp"], "pulse": row["pulse"],
        "consciousness": row["consciousness"], "temperature_c": row["temperature_c"],
        "spo2_scale_claim": row["spo2_scale_claim"], "soft_signs": row["soft_signs"].split(),
        "client_news2_total": row["client_news2_total"], "recorder": row["recorder"]}
