"""NEWS2 (Royal College of Physicians, 2017) as a pure function over frozen values.

Invariants (DOMAIN.md, "NEWS2"):
- Numbers are read as ``Decimal(str(x))``, never through float arithmetic, then quantised
  half-up: temperature to 0.1 degC (degF is converted to degC in Decimal first), the rest to
  whole numbers. Sub-scores are read off the quantised values, so 35.05 degC -> 35.1 -> 1.
- Plausibility bounds (``PLAUSIBLE``, inclusive) apply to the quantised value that would be
  scored. ``score`` checks every parameter and raises one ``ImplausibleVitals`` carrying *all*
  problems in chart order; ``validate`` returns that list without raising. ``None`` means
  missing, which is not an error.
- Nothing is imputed. If a parameter is missing, ``total``, ``risk`` and ``monitoring`` are None
  and ``missing`` names the absent ``Vitals`` fields in chart order (``PARAMETERS``). Every
  sub-score that can still be computed is reported; ``red_score`` is read from those.
- SpO2 scale 2 is used only when the resident's recorded ``Scale2Setting`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from enum import IntEnum, StrEnum
from typing import NamedTuple

PARAMETERS = ("respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse",
              "consciousness", "temperature")
PLAUSIBLE: Mapping[str, tuple[int | Decimal, int | Decimal]] = {
    "respiration_rate": (1, 80), "spo2": (1, 100), "systolic_bp": (1, 300), "pulse": (1, 300),
    "temperature": (Decimal("25.0"), Decimal("45.0")),  # degC
}
_CTX = Context(prec=50, traps=[InvalidOperation])  # immune to callers' thread context
_ONE, _TENTH = Decimal(1), Decimal("0.1")
_T350, _T360, _T380, _T390 = (Decimal(t) for t in ("35.0", "36.0", "38.0", "39.0"))
_FAST_TYPES = frozenset({Decimal, float, int, str})  # exact types; bool excluded

Number = Decimal | int | float | str


class SpO2Scale(IntEnum):
    SCALE_1 = 1
    SCALE_2 = 2


class RiskBand(StrEnum):
    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _BAND_RANK[self]  # definition order; a dict because the trend rule asks often


_BAND_RANK = {band: i for i, band in enumerate(RiskBand)}


class Monitoring(StrEnum):
    MIN_12_HOURLY = "minimum 12-hourly"
    MIN_4_6_HOURLY = "minimum 4-6-hourly"
    MIN_HOURLY = "minimum hourly"
    CONTINUOUS = "continuous"


class ClaimCheck(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NO_CLAIM = "no claim"
    INCOMPLETE = "cannot compare: incomplete set"


@dataclass(frozen=True, slots=True)
class Vitals:
    respiration_rate: Number | None = None
    spo2: Number | None = None
    on_oxygen: bool | None = None
    systolic_bp: Number | None = None
    pulse: Number | None = None
    consciousness: str | None = None  # ACVPU letter; "C" is *new* confusion only
    temperature: Number | None = None
    temperature_unit: str = "Cel"  # or "[degF]"


@dataclass(frozen=True, slots=True)
class Scale2Setting:
    """A clinician's prescribed 88-92 % target for this resident: who set it and when."""

    set_by: str
    set_at: datetime

    def __post_init__(self) -> None:
        if not self.set_by.strip():
            raise ValueError("Scale2Setting.set_by must name who set it")
        if self.set_at.utcoffset() is None:
            raise ValueError("Scale2Setting.set_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class ImplausibleValue:
    parameter: str
    value: object
    rule: str


class ImplausibleVitals(ValueError):
    def __init__(self, errors: list[ImplausibleValue]) -> None:
        super().__init__("; ".join(f"{e.parameter}={e.value!r}: {e.rule}" for e in errors))
        self.errors = tuple(errors)


# NamedTuples, not frozen dataclasses: equally immutable, about 3x cheaper to build per score.
class SubScores(NamedTuple):
    respiration_rate: int | None
    spo2: int | None
    air_or_oxygen: int | None
    systolic_bp: int | None
    pulse: int | None
    consciousness: int | None
    temperature: int | None


class News2Result(NamedTuple):
    sub_scores: SubScores
    total: int | None
    risk: RiskBand | None
    red_score: bool
    monitoring: Monitoring | None
    scale: SpO2Scale
    missing: tuple[str, ...]


def _decimal(raw: object) -> Decimal | None:
    if type(raw) not in _FAST_TYPES and (isinstance(raw, bool) or
                                         not isinstance(raw, Decimal | int | float | str)):
        return None
    try:
        d = raw if type(raw) is Decimal else Decimal(str(raw))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _reject(name: str, raw: object, errors: list[ImplausibleValue], rule: str = "") -> None:
    low, high = PLAUSIBLE.get(name, ("", ""))
    errors.append(ImplausibleValue(name, raw, rule or f"must be {low}-{high} after rounding"))


def _whole(name: str, raw: object, errors: list[ImplausibleValue]) -> int | None:
    if type(raw) is int:  # hot path: already whole
        value = raw
    elif raw is None:
        return None
    elif (d := _decimal(raw)) is None:
        return _reject(name, raw, errors, "not a finite number")
    else:
        try:
            value = int(d.quantize(_ONE, ROUND_HALF_UP, _CTX))
        except InvalidOperation:  # too many digits to quantise: far out of range anyway
            return _reject(name, raw, errors)
    low, high = PLAUSIBLE[name]
    return value if low <= value <= high else _reject(name, raw, errors)


def _celsius(raw: object, unit: str, errors: list[ImplausibleValue]) -> Decimal | None:
    if raw is None:
        return None
    if unit != "Cel" and unit != "[degF]":
        return _reject("temperature_unit", unit, errors, "must be 'Cel' or '[degF]'")
    if (d := _decimal(raw)) is None:
        return _reject("temperature", raw, errors, "not a finite number")
    if unit == "[degF]":
        # Multiply before dividing: (F-32)*5 is exact and x/9 repeats a single digit,
        # so the division can never round onto a false .x5 tie.
        d = _CTX.divide(_CTX.multiply(_CTX.subtract(d, 32), 5), 9)
    try:
        c = d.quantize(_TENTH, ROUND_HALF_UP, _CTX)
    except InvalidOperation:
        return _reject("temperature", raw, errors)
    low, high = PLAUSIBLE["temperature"]
    return c if low <= c <= high else _reject("temperature", raw, errors)


def _parse(v: Vitals) -> tuple[tuple[int | None, ...], Decimal | None, list[ImplausibleValue]]:
    errors: list[ImplausibleValue] = []  # appended in chart order
    rr = _whole("respiration_rate", v.respiration_rate, errors)
    spo2 = _whole("spo2", v.spo2, errors)
    if v.on_oxygen is not None and type(v.on_oxygen) is not bool:
        _reject("on_oxygen", v.on_oxygen, errors, "must be true, false or null")
    sbp = _whole("systolic_bp", v.systolic_bp, errors)
    pulse = _whole("pulse", v.pulse, errors)
    if v.consciousness is not None and v.consciousness not in ("A", "C", "V", "P", "U"):
        _reject("consciousness", v.consciousness, errors, "must be one of A, C, V, P, U")
    return (rr, spo2, sbp, pulse), _celsius(v.temperature, v.temperature_unit, errors), errors


def validate(vitals: Vitals) -> list[ImplausibleValue]:
    """Every implausible value in ``vitals``, in chart order (empty when none)."""
    return _parse(vitals)[2]


def _rr(v: int) -> int:
    return 3 if v <= 8 else 1 if v <= 11 else 0 if v <= 20 else 2 if v <= 24 else 3


def _spo2_scale1(v: int) -> int:
    return 3 if v <= 91 else 2 if v <= 93 else 1 if v <= 95 else 0


def _spo2_scale2(v: int, on_oxygen: bool | None) -> int | None:
    if v <= 92:
        return 3 if v <= 83 else 2 if v <= 85 else 1 if v <= 87 else 0
    if on_oxygen is None:  # 93+ scores only on oxygen, so air/oxygen must be known
        return None
    return 0 if not on_oxygen else 1 if v <= 94 else 2 if v <= 96 else 3


def _systolic(v: int) -> int:
    return 3 if v <= 90 else 2 if v <= 100 else 1 if v <= 110 else 0 if v <= 219 else 3


def _pulse(v: int) -> int:
    if v <= 50:
        return 3 if v <= 40 else 1
    return 0 if v <= 90 else 1 if v <= 110 else 2 if v <= 130 else 3


def _temperature(c: Decimal) -> int:
    return 3 if c <= _T350 else 1 if c <= _T360 else 0 if c <= _T380 else 1 if c <= _T390 else 2


def risk_band(total: int, red_score: bool) -> RiskBand:
    if total >= 7:
        return RiskBand.HIGH
    if total >= 5:
        return RiskBand.MEDIUM
    return RiskBand.LOW_MEDIUM if red_score else RiskBand.LOW


def monitoring(total: int, red_score: bool) -> Monitoring:
    if total >= 7:
        return Monitoring.CONTINUOUS
    if total >= 5 or red_score:
        return Monitoring.MIN_HOURLY
    return Monitoring.MIN_4_6_HOURLY if total >= 1 else Monitoring.MIN_12_HOURLY


# The two rules above, tabulated once for the hot path: index 2 * total + red_score.
_OUTCOMES = tuple((risk_band(t, r), monitoring(t, r)) for t in range(21) for r in (False, True))


def score(vitals: Vitals, scale2: Scale2Setting | None = None) -> News2Result:
    """Score ``vitals``; raises ``ImplausibleVitals`` listing every implausible value."""
    (rr, spo2, sbp, pulse), temp, errors = _parse(vitals)
    if errors:
        raise ImplausibleVitals(errors)
    oxygen, acvpu = vitals.on_oxygen, vitals.consciousness
    subs = SubScores(None if rr is None else _rr(rr),
                     None if spo2 is None else (_spo2_scale1(spo2) if scale2 is None
                                                else _spo2_scale2(spo2, oxygen)),
                     None if oxygen is None else (2 if oxygen else 0),
                     None if sbp is None else _systolic(sbp),
                     None if pulse is None else _pulse(pulse),
                     None if acvpu is None else (0 if acvpu == "A" else 3),
                     None if temp is None else _temperature(temp))
    scale = SpO2Scale.SCALE_1 if scale2 is None else SpO2Scale.SCALE_2
    red = 3 in subs
    if None in subs:
        raw = (vitals.respiration_rate, vitals.spo2, oxygen, vitals.systolic_bp, vitals.pulse,
               acvpu, vitals.temperature)
        missing = tuple(name for name, x in zip(PARAMETERS, raw, strict=True) if x is None)
        return News2Result(subs, None, None, red, None, scale, missing)
    total: int = sum(subs)  # type: ignore[arg-type]  # no None left
    risk, watch = _OUTCOMES[2 * total + red]
    return News2Result(subs, total, risk, red, watch, scale, ())


DEFAULT_WORDING: Mapping[RiskBand, str] = {
    RiskBand.LOW: "Low risk: continue usual care. Repeat observations as planned, and sooner "
                  "if soft signs appear or you are worried.",
    RiskBand.LOW_MEDIUM: "Low-medium risk (one observation scores 3): repeat observations "
                         "within 1 hour and use SBARD to ask the GP or NHS 111 for advice.",
    RiskBand.MEDIUM: "Medium risk (NEWS2 5-6): urgent response. Use SBARD to contact the GP "
                     "or NHS 111 now; observe at least hourly.",
    RiskBand.HIGH: "High risk (NEWS2 7 or more): emergency response. Call 999 and use SBARD; "
                   "stay with the resident and follow their care plan or ReSPECT form.",
}


def response_text(result: News2Result, wording: Mapping[RiskBand, str] = DEFAULT_WORDING) -> str:
    """The area's wording for the result's band; fixed text when the set is incomplete."""
    if result.risk is None:
        return ("Incomplete NEWS2, no score: take the missing observations ("
                + ", ".join(result.missing) + "); never assume they are normal.")
    return wording[result.risk]


def compare_claim(result: News2Result, claimed_total: int | None) -> ClaimCheck:
    """Compare a client-sent total with our recomputed one; the claim is never trusted."""
    if claimed_total is None:
        return ClaimCheck.NO_CLAIM
    if result.total is None:
        return ClaimCheck.INCOMPLETE
    same = type(claimed_total) is int and claimed_total == result.total
    return ClaimCheck.MATCH if same else ClaimCheck.MISMATCH
