"""FHIR mapping without I/O: the six real examples and the variants real traffic carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from services.ingest.fhir import Source, map_entries, to_set
from services.ingest.schemas import ObservationSetIn
from shared.auth import Principal, Role

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fhir"
ME = Principal("carehq", Role.PLATFORM, sites=frozenset({"1-100"}))
SRC = Source(ME, "https://x/site", {}, {})


def mapped_set(resource: dict) -> ObservationSetIn:
    mapped = map_entries([(0, "Observation", resource)], SRC)
    assert not mapped.errors, mapped.errors
    (group,) = mapped.groups
    result = to_set(group)
    assert isinstance(result, ObservationSetIn), result
    return result


@pytest.mark.parametrize(("name", "expected"), [
    ("r4spec-observation-example-respiratory-rate.json", {"respiration_rate": D("26")}),
    ("r4spec-observation-example-heart-rate.json", {"pulse": D("44")}),
    ("r4spec-observation-example-bloodpressure.json", {"systolic_bp": D("107")}),
    ("r4spec-observation-example-body-temperature.json",
     {"temperature": D("36.5"), "temperature_unit": "C"}),
    ("UKCore-Observation-PatientConsciousness-Example.json", {"consciousness": "V"}),
    ("UKCore-Observation-OxygenTherapy-Example.json", {"on_oxygen": True}),
])
def test_real_examples(name, expected):
    raw = json.loads((FIXTURES / name).read_text(), parse_float=D)
    got = mapped_set(raw)
    for field, value in expected.items():
        assert getattr(got, field) == value
    assert got.site_id == "1-100" and got.nhs_number is None
    assert got.local_id in ("example", "UKCore-Patient-RichardSmith-Example")
    assert got.taken_at.tzinfo is not None


def vital(code: str, system: str = "http://loinc.org", **extra) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                       "value": "943 476 5919"}},
            "effectiveDateTime": "2026-11-22T10:00:00+01:00", **extra}


def test_nhs_number_spelling_is_normalised_and_time_keeps_its_zone():
    got = mapped_set(vital("8867-4", valueQuantity={"value": D("70"), "code": "{beats}/min"}))
    assert got.nhs_number == "9434765919"
    assert got.taken_at == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_date_only_means_london_midnight():
    got = mapped_set({**vital("8867-4", valueQuantity={"value": D("70"), "code": "/min"}),
                      "effectiveDateTime": "2026-07-01"})
    assert got.taken_at == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(("resource", "expression", "reason"), [
    (vital("8310-5", valueQuantity={"value": D("37"), "code": "K"}),
     "Observation.valueQuantity.code", "unit must be one of Cel, [degF]"),
    (vital("1104441000000107", "http://snomed.info/sct",
           valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct",
                                             "code": "1"}]}),
     "Observation.valueCodeableConcept", "not an ACVPU value"),
    ({**vital("8867-4", valueQuantity={"value": D("70"), "code": "/min"}),
      "effectiveDateTime": "2026-11"}, "Observation.effectiveDateTime",
     "must give at least a full date"),
    ({**vital("8867-4", valueQuantity={"value": D("70"), "code": "/min"}), "subject": None},
     "Observation.subject", "subject (the resident) is required"),
])
def test_errors_name_the_element(resource, expression, reason):
    mapped = map_entries([(0, "Observation", resource)], SRC)
    (problem,) = mapped.errors[0]
    assert problem.expression == expression and problem.reason.startswith(reason)


def test_conflicting_values_for_one_time_reject_the_set():
    a = vital("8867-4", valueQuantity={"value": D("70"), "code": "/min"})
    b = vital("364075005", "http://snomed.info/sct",
              valueQuantity={"value": D("71"), "code": "/min"})
    mapped = map_entries([(0, "Bundle.entry[0].resource", a), (1, "Bundle.entry[1].resource", b)],
                         SRC)
    (group,) = mapped.groups
    assert group.entries == [0, 1]
    assert group.errors[0]["expression"] == ["Bundle.entry[1].resource.valueQuantity.value"]


def test_panel_without_systolic_and_absent_values_are_notes_not_errors():
    panel = vital("85354-9", component=[{"code": {"coding": [
        {"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {
            "value": D("60"), "code": "mm[Hg]"}}])
    absent = vital("9279-1", dataAbsentReason={"coding": [{"code": "not-performed"}]})
    mapped = map_entries([(0, "A", panel), (1, "B", absent)], SRC)
    assert mapped.groups == [] and mapped.errors == {}
    assert "no systolic" in mapped.notes[0][0].reason
    assert "not-performed" in mapped.notes[1][0].reason
