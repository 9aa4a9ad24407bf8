"""Read one FHIR Observation: its NEWS2 values, resident, site and time, or why not.

Each reader returns values with the FHIR element they came from (``expression``), so every
error can name the element. Choices (documented for platforms):
- Resident: ``subject.identifier`` with system https://fhir.nhs.uk/Id/nhs-number, or the NHS
  number identifier of the Patient the subject references inside the same Bundle; otherwise a
  platform-local id: a subject identifier of another system, or the referenced Patient's id
  (``Patient/abc`` -> ``abc``). A ``urn:uuid`` reference with no identifier is not stable: error.
- Site: the extension whose url is ``IngestSettings.fhir_site_extension`` (valueIdentifier,
  valueCode or valueString); else a ``performer`` identifier (or a performer Organization in the
  Bundle) with an ODS or CQC location system (``fhir_codes.SITE_SYSTEMS``); else, when the token
  is scoped to exactly one site, that site.
- Time: effectiveDateTime, effectiveInstant or effectivePeriod.start. A time must carry a zone
  (FHIR requires it); a bare date means midnight, Europe/London, of that date; year or month
  precision is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.ingest import fhir_codes as codes
from services.ingest.domain.rules import LONDON
from services.ingest.fhir_models import CodeableConcept, Observation, Quantity, Reference


@dataclass
class Problem:
    expression: str
    reason: str
    value: Any = None


@dataclass
class Reading:
    values: dict[str, tuple[Any, str]] = field(default_factory=dict)  # field -> (value, path)
    notes: list[Problem] = field(default_factory=list)  # warnings: ignored parts
    errors: list[Problem] = field(default_factory=list)


def _codings(concept: CodeableConcept) -> list[tuple[str | None, str | None]]:
    return [(c.system, c.code) for c in concept.coding]


def read_values(obs: Observation, at: str) -> Reading:
    """The NEWS2 values an Observation carries (empty with a note when it carries none)."""
    out = Reading()
    kind = codes.parameter_of(_codings(obs.code))
    if kind is None:
        air = obs.valueCodeableConcept and _air_or_oxygen(obs.valueCodeableConcept)
        oxygen = codes.AIR_OR_OXYGEN.get(obs.code.has(codes.SNOMED, codes.AIR_OR_OXYGEN) or "")
        found = oxygen if oxygen is not None else air
        if found is None:
            out.notes.append(Problem(f"{at}.code", "not a NEWS2 parameter; ignored"))
        else:
            out.values["on_oxygen"] = (found, f"{at}.code")
        return out
    _READERS.get(kind, _quantity)(obs, at, kind, out)
    return out


def _air_or_oxygen(concept: CodeableConcept) -> bool | None:
    code = concept.has(codes.SNOMED, codes.AIR_OR_OXYGEN)
    return None if code is None else codes.AIR_OR_OXYGEN[code]


def _absent(out: Reading, path: str, why: CodeableConcept | None) -> None:
    reason = next((c.code for c in why.coding), None) if why else None
    out.notes.append(Problem(path, f"no value (dataAbsentReason {reason or 'not given'}); "
                                   "the parameter counts as missing"))


def _quantity(obs: Observation, at: str, kind: str, out: Reading,
              qty: Quantity | None = None, path: str | None = None) -> None:
    qty = qty if path else obs.valueQuantity
    path = path or f"{at}.valueQuantity"
    if qty is None or qty.value is None:
        _absent(out, path, obs.dataAbsentReason)
        return
    unit = qty.code or qty.unit
    accepted = codes.UNITS[kind]
    if unit not in accepted:
        out.errors.append(Problem(f"{path}.code", f"unit must be one of {', '.join(accepted)}",
                                  unit))
        return
    out.values[kind] = (qty.value, f"{path}.value")
    if kind == "temperature":
        out.values["temperature_unit"] = (accepted[unit], f"{path}.code")


def _panel(obs: Observation, at: str, _: str, out: Reading) -> None:
    for i, comp in enumerate(obs.component):
        if codes.parameter_of(_codings(comp.code)) == "systolic_bp":
            if comp.valueQuantity is None:
                _absent(out, f"{at}.component[{i}]", comp.dataAbsentReason)
                return
            _quantity(obs, at, "systolic_bp", out, comp.valueQuantity,
                      f"{at}.component[{i}].valueQuantity")
            return
    out.notes.append(Problem(f"{at}.component", "no systolic (8480-6) component; missing"))


def _acvpu(obs: Observation, at: str, kind: str, out: Reading) -> None:
    concept = obs.valueCodeableConcept
    code = concept.has(codes.SNOMED, set(codes.ACVPU_CODES)) if concept else None
    if code is not None:
        out.values[kind] = (codes.ACVPU_CODES[code], f"{at}.valueCodeableConcept")
    elif concept is None:
        _absent(out, f"{at}.valueCodeableConcept", obs.dataAbsentReason)
    else:
        shown = ",".join(c.code or "" for c in concept.coding)
        out.errors.append(Problem(f"{at}.valueCodeableConcept",
                                  "not an ACVPU value (SNOMED CT 248234008, 130987000, "
                                  "300202002, 450847001, 422768004)", shown))


def _total(obs: Observation, at: str, kind: str, out: Reading) -> None:
    value = obs.valueInteger
    if value is None and obs.valueQuantity and obs.valueQuantity.value is not None:
        if obs.valueQuantity.value == int(obs.valueQuantity.value):
            value = int(obs.valueQuantity.value)
    if value is None:
        out.notes.append(Problem(f"{at}.value[x]", "NEWS2 total has no integer value; ignored"))
    else:
        out.values[kind] = (value, f"{at}.value[x]")


_READERS = {"bp_panel": _panel, "consciousness": _acvpu, "client_news2_total": _total}


def taken_at(obs: Observation, at: str) -> tuple[datetime | None, Problem | None]:
    """When it was taken, from effective[x]; a time needs a zone, a date means London midnight."""
    raw, element = _effective(obs)
    if raw is None:
        return None, Problem(f"{at}.effective[x]", "effectiveDateTime is required")
    if len(raw) == 10:
        day = date.fromisoformat(raw)
        return datetime(day.year, day.month, day.day, tzinfo=LONDON), None
    if len(raw) < 10:
        return None, Problem(f"{at}.{element}", "must give at least a full date", raw)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None, Problem(f"{at}.{element}", "not a valid FHIR dateTime", raw)
    if when.tzinfo is None:
        return None, Problem(f"{at}.{element}", "a time must carry a time zone", raw)
    return when, None


def _effective(obs: Observation) -> tuple[str | None, str]:
    """The time given and its element (the path is only built for an answer naming it)."""
    if obs.effectiveDateTime:
        return obs.effectiveDateTime, "effectiveDateTime"
    if obs.effectiveInstant:
        return obs.effectiveInstant, "effectiveInstant"
    start = obs.effectivePeriod.start if obs.effectivePeriod else None
    return start, "effectivePeriod.start"


def reference_key(ref: Reference | None) -> str | None:
    return ref.reference if ref and ref.reference else None
