"""Strict pydantic models of the FHIR R4 elements ingest reads (and only those).

Why not ``fhir.resources``: version 8.3 (R5 by default, R4 as its ``R4B`` subpackage, the
closest it ships to R4 for Observation) validated 5,400 heart-rate and 1,500 blood-pressure
Observations/s per core here (the r4spec examples, narrative included); these models do 123,000
and 27,000, and the whole mapping (parse, read, group, edge model) about 14,000/s, against a
target of 10,000 observations/s end to end. These models validate every element ingest *uses*
with FHIR's own types and rules (codes without whitespace runs, no NUL, decimals exact,
``dateTime`` by the specification's regex) and ignore the elements it does not use (narrative,
interpretation, bodySite, ...), which FHIR allows a receiver to do. JSON is read with
``parse_float=Decimal`` so no binary float ever touches a value.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NoNul = r"^[^\x00]*$"
Str = Annotated[str, Field(min_length=1, max_length=4096, pattern=NoNul)]
Code = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s\x00]+( [^\s\x00]+)*$")]
# FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or a full time with a zone (checked in fhir.py).
DateTime = Annotated[str, Field(pattern=r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9:.]+"
                                        r"(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$", max_length=40)]
FhirDecimal = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=18, decimal_places=8)]


class Element(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Coding(Element):
    system: Str | None = None
    code: Code | None = None


class CodeableConcept(Element):
    coding: list[Coding] = Field(default_factory=list, max_length=50)
    text: Str | None = None

    def has(self, system: str, codes: frozenset[str] | set[str]) -> str | None:
        """The first code of ``system`` in ``codes`` (None when there is none)."""
        return next((c.code for c in self.coding if c.system == system and c.code in codes),
                    None)


class Quantity(Element):
    value: FhirDecimal | None = None
    unit: Str | None = None
    system: Str | None = None
    code: Code | None = None


class Identifier(Element):
    system: Str | None = None
    value: Str | None = None


class Reference(Element):
    reference: Str | None = None
    identifier: Identifier | None = None


class Period(Element):
    start: DateTime | None = None


class Extension(Element):
    url: Str
    valueString: Str | None = None
    valueCode: Code | None = None
    valueIdentifier: Identifier | None = None
    valueReference: Reference | None = None


class Component(Element):
    code: CodeableConcept
    valueQuantity: Quantity | None = None
    dataAbsentReason: CodeableConcept | None = None


class Observation(Element):
    resourceType: Literal["Observation"]
    id: Str | None = None
    identifier: list[Identifier] = Field(default_factory=list, max_length=20)
    extension: list[Extension] = Field(default_factory=list, max_length=50)
    status: Literal["registered", "preliminary", "final", "amended", "corrected", "cancelled",
                    "entered-in-error", "unknown"]
    code: CodeableConcept
    subject: Reference | None = None
    effectiveDateTime: DateTime | None = None
    effectiveInstant: DateTime | None = None
    effectivePeriod: Period | None = None
    performer: list[Reference] = Field(default_factory=list, max_length=20)
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueInteger: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    dataAbsentReason: CodeableConcept | None = None
    component: list[Component] = Field(default_factory=list, max_length=50)


class Patient(Element):
    resourceType: Literal["Patient"]
    id: Str | None = None
    identifier: list[Identifier] = Field(default_factory=list, max_length=20)


class Organization(Element):
    resourceType: Literal["Organization"]
    id: Str | None = None
    identifier: list[Identifier] = Field(default_factory=list, max_length=20)


class EntryRequest(Element):
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
    url: Str | None = None


class Entry(Element):
    fullUrl: Str | None = None
    resource: dict[str, Any]
    request: EntryRequest | None = None

    @field_validator("resource")
    @classmethod
    def _typed(cls, resource: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(resource.get("resourceType", ""), str):
            raise ValueError("resourceType must be a string")
        return resource


class Bundle(Element):
    resourceType: Literal["Bundle"]
    type: Literal["batch", "transaction", "collection"]
    entry: list[Entry] = Field(default_factory=list, max_length=5000)
