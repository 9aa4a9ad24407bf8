"""FHIR R4 to observation sets: one set per resident, site and time.

Entries are read one by one (``fhir_read``); Observations of the same resident, site and
``effective`` time become ONE set (``ObservationSetIn``), validated and recorded like a native
set. Every entry keeps a list of issues with the FHIR element each names, so the answer can say
exactly what was ignored or wrong. ``cancelled`` and ``entered-in-error`` Observations (and
other non-final statuses) are never recorded: their entry says so.

A set's ``platform_set_id`` is derived from its Observations' identifiers (or ids), so a
retried Bundle is recognised as a duplicate even without an Idempotency-Key; a set with an
Observation that has neither gets none, and only the Idempotency-Key protects it.

An ``amended`` or ``corrected`` Observation says it replaces a reading sent before; an
``entered-in-error`` one says a reading sent before was wrong. A set with either is an
``AmendingSetIn``: it replaces the set its platform recorded for that resident at that time
(``observations.record_sets`` says how) - the amended values over the recorded ones, without
the parameters entered in error (``withdraws``; their values are never read as readings), or
no set at all when none is left. An amendment with nothing recorded at that time is recorded
like any set; a reading entered in error with nothing recorded withdraws nothing (a warning).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from services.ingest import fhir_codes as codes
from services.ingest.domain.nhs_number import InvalidNhsNumber, normalise
from services.ingest.domain.rules import PARAMETERS
from services.ingest.fhir_models import Observation, Organization, Patient, Reference
from services.ingest.fhir_read import Problem, read_values, taken_at
from services.ingest.schemas import AmendingSetIn, ObservationSetIn
from services.ingest.validation import WITHHELD, Rejected
from shared.auth import Principal

_OBS = Observation.__pydantic_validator__  # the model's own validator, without the wrapper
_SET = TypeAdapter(ObservationSetIn)
_AMENDING = TypeAdapter(AmendingSetIn)


@dataclass
class Group:
    entries: list[int] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    value_paths: dict[str, list[str]] = field(default_factory=dict)  # value -> FHIR elements
    ats: list[str] = field(default_factory=list)  # each Observation's path, in entry order
    keys: list[str | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    amends: dict[str, str] = field(default_factory=dict)  # status path -> its status
    withdraws: list[str] = field(default_factory=list)  # parameters entered in error

    @property
    def paths(self) -> dict[str, list[str]]:
        """Set field -> the FHIR elements that gave it (built when an answer names them)."""
        return {**self.value_paths, "status": list(self.amends),
                "taken_at": [f"{at}.effective[x]" for at in self.ats],
                "nhs_number": [f"{at}.subject" for at in self.ats],
                "site_id": [f"{at}.performer" for at in self.ats]}


@dataclass
class Mapped:
    groups: list[Group]
    notes: dict[int, list[Problem]]  # entry index -> warnings (ignored parts)
    errors: dict[int, list[Problem]]  # entry index -> errors (entry not recorded)


@dataclass(frozen=True)
class Source:
    """Where a request's entries live: their paths, and the Bundle's Patients/Organizations."""

    principal: Principal
    site_extension: str
    patients: dict[str, Patient]
    organizations: dict[str, Organization]
    # subject (reference, identifier system, identifier value) -> (NHS number, local id), or
    # (None, None) when it names no resident: a resident's Observations share one subject.
    residents: dict[tuple[str | None, ...], tuple[str | None, str | None]] = field(
        default_factory=dict)


def map_entries(resources: list[tuple[int, str, dict[str, Any]]], src: Source) -> Mapped:
    """Group (index, FHIR path, resource) Observations into sets; others are referenced only."""
    groups: dict[tuple[Any, ...], Group] = {}
    mapped = Mapped([], {}, {})
    for index, at, raw in resources:
        if raw.get("resourceType") != "Observation":
            continue
        found = _read(index, at, raw, src, mapped)
        if found is not None:
            key, obs, reading = found
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group()
            _merge(group, index, obs, reading)
    for key, group in groups.items():
        group.fields.update(nhs_number=key[0], local_id=key[1], site_id=key[2],
                            taken_at=key[3], source_platform=src.principal.sub)
        group.fields["platform_set_id"] = _set_id(group.keys)
        mapped.groups.append(group)
    return mapped


def _read(index: int, at: str, raw: dict[str, Any], src: Source, mapped: Mapped
          ) -> tuple[tuple[Any, ...], Observation, Any] | None:
    try:
        obs = _OBS.validate_python(raw)
    except ValidationError as exc:
        mapped.errors[index] = [Problem(_path(at, err["loc"]), err["msg"])
                                for err in exc.errors(include_url=False)]
        return None
    reading = read_values(obs, at)
    if obs.status == codes.ENTERED_IN_ERROR:
        reading = _in_error(reading, at)
    elif obs.status not in codes.SCORED_STATUSES:
        never = "is never scored" if obs.status in codes.NEVER_SCORED else "is not final"
        mapped.notes[index] = [Problem(f"{at}.status", f"status {obs.status} {never}; "
                                       "only final, amended or corrected are recorded")]
        return None
    resident, who = _resident(obs, at, src)
    site, where = _site(obs, at, src)
    when, bad_time = taken_at(obs, at)
    mapped.notes[index] = reading.notes
    if reading.errors or who or where or bad_time:
        mapped.errors[index] = reading.errors + [p for p in (who, where, bad_time) if p]
        return None
    if not reading.values:
        return None
    return (*resident, site, when), obs, (reading, at)


def _in_error(reading: Any, at: str) -> Any:
    """An entered-in-error Observation's reading: which parameters it withdraws (its value,
    wrong by definition, is neither read nor checked)."""
    stored = (codes.STORED_AS.get(name, name) for name in reading.values)
    kinds = sorted(name for name in stored if name in PARAMETERS)
    reading.errors = []
    reading.values = {codes.WITHDRAWN: (kinds, f"{at}.status")} if kinds else {}
    if not kinds:
        reading.notes = [Problem(f"{at}.status", "entered-in-error, but it names no NEWS2 "
                                 "parameter this service records; nothing was withdrawn")]
    return reading


def _path(at: str, loc: tuple[Any, ...]) -> str:
    out = at
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _merge(group: Group, index: int, obs: Observation, found: Any) -> None:
    reading, at = found
    group.entries.append(index)
    group.keys.append(_obs_key(obs))
    if obs.status in codes.AMENDING_STATUSES or obs.status == codes.ENTERED_IN_ERROR:
        group.amends[f"{at}.status"] = obs.status
    fields, value_paths = group.fields, group.value_paths
    for name, (value, path) in reading.values.items():
        if name == codes.WITHDRAWN:
            group.withdraws += value
            continue
        if name in fields and fields[name] != value:
            group.errors.append({"field": name, "value": str(value), "expression": [path],
                                 "reason": f"conflicts with {fields[name]} given by "
                                           f"{value_paths[name][0]} for the same time"})
            continue
        fields[name] = value
        paths = value_paths.get(name)
        if paths is None:
            value_paths[name] = [path]
        else:
            paths.append(path)
    group.ats.append(at)


def _obs_key(obs: Observation) -> str | None:
    for ident in obs.identifier:
        if ident.value:
            return f"{ident.system or ''}|{ident.value}"
    return f"id|{obs.id}" if obs.id else None


def _set_id(keys: list[str | None]) -> str | None:
    if not keys or any(k is None for k in keys):
        return None
    digest = hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()  # type: ignore
    return f"fhir:{digest[:32]}"


def _resident(obs: Observation, at: str, src: Source
              ) -> tuple[tuple[str | None, str | None], Problem | None]:
    ref = obs.subject
    if ref is None:
        return (None, None), Problem(f"{at}.subject", "subject (the resident) is required")
    ident = ref.identifier
    key = (ref.reference, ident.system, ident.value) if ident else (ref.reference,)
    found = src.residents.get(key)
    if found is None:
        found = src.residents[key] = _resident_of(ref, src)
    if found == (None, None):
        return found, Problem(f"{at}.subject", "needs an NHS number identifier, a local "
                                               "identifier or a Patient/<id> reference")
    return found, None


def _resident_of(ref: Reference, src: Source) -> tuple[str | None, str | None]:
    """(NHS number, None), (None, local id), or (None, None) when ``ref`` names neither."""
    idents = [ref.identifier] if ref.identifier else []
    patient = src.patients.get(ref.reference or "")
    idents += patient.identifier if patient else []
    nhs = next((i.value for i in idents if i.system == codes.NHS_NUMBER_SYSTEM and i.value), None)
    if nhs is not None:
        try:  # one spelling, so "943 476 5919" and "9434765919" group together
            return normalise(nhs), None
        except InvalidNhsNumber:
            return nhs, None  # refused with the reason when the set is prepared
    local = next((i.value for i in idents if i.value), None)
    if local is None and ref.reference and not ref.reference.startswith("urn:"):
        local = ref.reference.rsplit("/", 1)[-1]
    return None, local


def _site(obs: Observation, at: str, src: Source) -> tuple[str | None, Problem | None]:
    for ext in obs.extension:
        if ext.url == src.site_extension:
            value = (ext.valueIdentifier.value if ext.valueIdentifier else None) \
                or ext.valueCode or ext.valueString
            if value:
                return value, None
    for ref in obs.performer:
        site = _site_of(ref, src)
        if site:
            return site, None
    if len(src.principal.sites) == 1:
        return next(iter(src.principal.sites)), None
    return None, Problem(f"{at}.performer", "the site is required: the site extension, or a "
                                            "performer with an ODS or CQC location identifier")


def _site_of(ref: Reference, src: Source) -> str | None:
    idents = [ref.identifier] if ref.identifier else []
    org = src.organizations.get(ref.reference or "")
    idents += org.identifier if org else []
    return next((i.value for i in idents if i.system in codes.SITE_SYSTEMS and i.value), None)


def to_set(group: Group) -> ObservationSetIn | Rejected:
    """The native set for a group, or its errors naming FHIR elements."""
    if group.errors:
        return Rejected(422, group.errors)
    try:
        if group.amends:
            statuses = set(group.amends.values())
            status = (codes.ENTERED_IN_ERROR if codes.ENTERED_IN_ERROR in statuses
                      else next(iter(group.amends.values())))
            return _AMENDING.validate_python({**group.fields, "amends": status,
                                              "withdraws": sorted(set(group.withdraws))})
        return _SET.validate_python(group.fields)
    except ValidationError as exc:
        return Rejected(422, [{"field": ".".join(map(str, e["loc"])), "reason": e["msg"],
                               "value": WITHHELD if "nhs_number" in e["loc"] else
                               str(e.get("input"))[:100]} for e in exc.errors(include_url=False)])
