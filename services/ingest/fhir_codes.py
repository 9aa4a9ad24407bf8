"""FHIR codes and units ingest recognises (DOMAIN.md, "Interoperability"), held as data.

A parameter is recognised by LOINC *or* SNOMED CT on ``Observation.code``; the blood pressure
panel is recognised by its own code and its systolic value read from the component coded
8480-6 (or SNOMED 271649006 / 72313002). Units are UCUM codes; the annotated variants real
payloads use (``{Breaths}/min``, ``{beats}/min``) are the same unit.
"""

from __future__ import annotations

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
# Where a site's code may be found on a performer Organization or its identifier.
SITE_SYSTEMS = frozenset({
    "https://fhir.nhs.uk/Id/ods-organization-code",
    "https://fhir.nhs.uk/Id/ods-site-code",
    "https://www.cqc.org.uk/location",
    "https://cqc.org.uk/location",
})

PARAMETER_CODES: dict[str, dict[str, frozenset[str]]] = {
    "respiration_rate": {LOINC: frozenset({"9279-1"}), SNOMED: frozenset({"86290005"})},
    "spo2": {LOINC: frozenset({"2708-6", "59408-5"}),
             SNOMED: frozenset({"103228002", "431314004"})},
    "pulse": {LOINC: frozenset({"8867-4"}), SNOMED: frozenset({"364075005", "78564009"})},
    "systolic_bp": {LOINC: frozenset({"8480-6"}), SNOMED: frozenset({"72313002", "271649006"})},
    "bp_panel": {LOINC: frozenset({"85354-9"}), SNOMED: frozenset({"75367002"})},
    "temperature": {LOINC: frozenset({"8310-5"}), SNOMED: frozenset({"276885007"})},
    "consciousness": {SNOMED: frozenset({"1104441000000107"})},
    "client_news2_total": {SNOMED: frozenset({"1104051000000101"})},
}
ROOM_AIR = "722742002"
ON_OXYGEN = "371825009"
AIR_OR_OXYGEN = {ROOM_AIR: False, ON_OXYGEN: True}

ACVPU_CODES = {"248234008": "A", "130987000": "C", "300202002": "V", "450847001": "P",
               "422768004": "U"}

UNITS: dict[str, dict[str, str | None]] = {
    "respiration_rate": {"/min": None, "{Breaths}/min": None, "{breaths}/min": None,
                         "{breath}/min": None},
    "pulse": {"/min": None, "{beats}/min": None, "{Beats}/min": None, "{beat}/min": None},
    "spo2": {"%": None},
    "systolic_bp": {"mm[Hg]": None},
    "temperature": {"Cel": "C", "[degF]": "F"},
}

SCORED_STATUSES = frozenset({"final", "amended", "corrected"})
NEVER_SCORED = frozenset({"cancelled", "entered-in-error"})
AMENDING_STATUSES = frozenset({"amended", "corrected"})   # replace an earlier reading
ENTERED_IN_ERROR = "entered-in-error"   # withdraws a parameter of an earlier reading
STORED_AS = {"temperature": "temperature_c"}   # a reading's value -> the stored parameter
WITHDRAWN = "_withdrawn"   # a reading's key for the parameters an Observation withdraws


# (system, code) -> parameter, the first parameter in PARAMETER_CODES order naming it.
_PARAMETER_OF: dict[tuple[str, str], str] = {}
for _name, _systems in PARAMETER_CODES.items():
    for _system, _codes in _systems.items():
        for _code in _codes:
            _PARAMETER_OF.setdefault((_system, _code), _name)


def parameter_of(codings: list[tuple[str | None, str | None]]) -> str | None:
    """Which parameter a code's codings name (first match wins)."""
    for system, code in codings:
        name = _PARAMETER_OF.get((system or "", code))  # type: ignore[arg-type]
        if name is not None:
            return name
    return None
