"""Validation rules for one observation set: plausible values, time window, site state.

Every failure is a ``FieldError`` naming the field, the offending value and the rule, so a
platform can fix its data without guessing. Values are Decimals in normalised units (°C) and
are never quantised here: scoring quantises. Ranges are *plausibility* limits (reject typing
errors and nonsense such as SpO2 above 100 or a rate of 0), not clinical thresholds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from services.ingest.domain.softsign_codes import SOFT_SIGN_CODES

LONDON = ZoneInfo("Europe/London")
PARAMETERS = ("respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse",
              "consciousness", "temperature_c")
ACVPU = frozenset("ACVPU")

# (lowest, highest) plausible value, inclusive, in normalised units.
RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "respiration_rate": (Decimal(1), Decimal(80)),
    "spo2": (Decimal(40), Decimal(100)),
    "systolic_bp": (Decimal(40), Decimal(300)),
    "pulse": (Decimal(20), Decimal(250)),
    "temperature_c": (Decimal(25), Decimal(45)),
}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    value: object
    reason: str

    def as_dict(self) -> dict[str, object]:
        value = self.value if isinstance(self.value, (int, bool, type(None))) else str(self.value)
        return {"field": self.field, "value": value, "reason": self.reason}


def fahrenheit_to_celsius(value: Decimal) -> Decimal:
    """Exact-as-Decimal conversion (98.6 °F -> 37 °C); rounding is scoring's job."""
    return ((value - 32) * 5 / 9).normalize()


def check_values(values: dict[str, object]) -> list[FieldError]:
    """Range and vocabulary checks on the parameters present (absent ones are simply missing)."""
    errors = []
    for name, (low, high) in RANGES.items():
        value = values.get(name)
        if value is not None and not low <= value <= high:  # type: ignore[operator]
            errors.append(FieldError(name, value, f"must be between {low} and {high}"))
    acvpu = values.get("consciousness")
    if acvpu is not None and acvpu not in ACVPU:
        errors.append(FieldError("consciousness", acvpu, "must be one of A, C, V, P, U"))
    return errors


def check_soft_signs(codes: tuple[str, ...]) -> list[FieldError]:
    return [FieldError(f"soft_signs.{i}", code, "not a known soft-sign code")
            for i, code in enumerate(codes) if code not in SOFT_SIGN_CODES]


def check_not_empty(values: dict[str, object], soft_signs: tuple[str, ...]) -> list[FieldError]:
    if soft_signs:
        return []
    for name in PARAMETERS:  # a plain loop: this runs for every set of every batch
        if values.get(name) is not None:
            return []
    return [FieldError("body", None, "a set needs at least one parameter or soft sign")]


def check_taken_at(taken_at: datetime, now: datetime, *, max_future_minutes: int,
                   max_age_days: int) -> list[FieldError]:
    """Not more than ``max_future_minutes`` ahead of ``now``, nor older than ``max_age_days``."""
    latest, earliest = _window(now, max_future_minutes, max_age_days)
    if taken_at > latest:
        return [FieldError("taken_at", taken_at.isoformat(),
                           f"more than {max_future_minutes} minutes in the future")]
    if taken_at < earliest:
        return [FieldError("taken_at", taken_at.isoformat(),
                           f"older than {max_age_days} days")]
    return []


@functools.lru_cache(maxsize=16)
def _window(now: datetime, max_future_minutes: int, max_age_days: int
            ) -> tuple[datetime, datetime]:
    # A batch checks all its sets against one ``now``: compute the bounds once.
    return (now + timedelta(minutes=max_future_minutes), now - timedelta(days=max_age_days))


def check_site_open(site_id: str, closed_on: date | None, taken_at: datetime
                    ) -> list[FieldError]:
    """A site closed on or before the (London) date of the reading cannot have taken it."""
    if closed_on is not None and taken_at.astimezone(LONDON).date() >= closed_on:
        return [FieldError("site_id", site_id, f"site closed on {closed_on.isoformat()}")]
    return []
