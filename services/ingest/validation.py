"""Turn one validated edge model into the row ingest stores, or say exactly why not.

Order of work: who is posting (a platform token posts only as itself), which site (known to
ingest's copy, inside the token's scope, open on the reading's date), which resident (NHS
number -> ``p1_`` pseudonym, else platform-local id -> ``l1_``), then the values. All errors
of an item are collected; nothing partial is kept. The NHS number is dropped here: the row,
the event and every error message carry the pseudonym or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.ingest.domain import rules
from services.ingest.domain.nhs_number import (
    InvalidNhsNumber,
    keyed,
    pseudonymise,
    pseudonymise_local,
)
from services.ingest.domain.rules import FieldError
from services.ingest.schemas import AmendingSetIn, ObservationSetIn, ResidentIn
from shared.auth import Principal, Role

WITHHELD = "(withheld)"
AMENDS = "amends"   # row key: the set amends an earlier reading (``AmendingSetIn``)
WITHDRAWS = "withdraws"   # row key: the parameters of that reading entered in error
_CONTENT_TAG = b"mandet/set-content/v1\x00"
_DECIMALS = ("respiration_rate", "spo2", "systolic_bp", "pulse", "temperature_c")


@dataclass(frozen=True, slots=True)
class KnownSite:
    icb_code: str
    psc_code: str
    closed_on: date | None


@dataclass(frozen=True)
class Context:
    principal: Principal
    sites: dict[str, KnownSite]
    now: datetime
    key: bytes
    max_future_minutes: int
    max_age_days: int


@dataclass
class Rejected(Exception):
    status: int
    errors: list[dict[str, Any]] = field(default_factory=list)


def prepare(item: ObservationSetIn, ctx: Context) -> dict[str, Any]:
    """The row values for ``item`` (without id and received_at), or raise ``Rejected``."""
    platform = _platform(item.source_platform, ctx.principal)
    site = _site(item.site_id, ctx.sites, ctx.principal)
    resident, errors = _resident(item.nhs_number, item.local_id, platform, ctx.key)
    values = _values(item)
    errors += rules.check_values(values) + rules.check_soft_signs(tuple(item.soft_signs))
    withdraws = item.withdraws if isinstance(item, AmendingSetIn) else []
    if not withdraws:   # a set that only withdraws parameters of a recorded one carries none
        errors += rules.check_not_empty(values, tuple(item.soft_signs))
    errors += rules.check_taken_at(item.taken_at, ctx.now,
                                   max_future_minutes=ctx.max_future_minutes,
                                   max_age_days=ctx.max_age_days)
    errors += rules.check_site_open(item.site_id, site.closed_on, item.taken_at)
    if errors:
        raise Rejected(422, [e.as_dict() for e in errors])
    row = {**_stored(values), "resident": resident,
           "site_id": item.site_id, "icb_code": site.icb_code, "psc_code": site.psc_code,
           "taken_at": item.taken_at, "source_platform": platform,
           "platform_set_id": item.platform_set_id, "spo2_scale_claim": item.spo2_scale_claim,
           "soft_signs": " ".join(dict.fromkeys(item.soft_signs)),
           "client_news2_total": item.client_news2_total, "recorder": item.recorder}
    row["content_hash"] = content_hash(row, ctx.key, withdraws)
    if isinstance(item, AmendingSetIn):   # read and removed by record_sets; never stored
        row[AMENDS], row[WITHDRAWS] = item.amends, withdraws
    return row


def pseudonym_of(item: ResidentIn, principal: Principal, sites: dict[str, KnownSite],
                 key: bytes) -> str:
    """The pseudonym of the resident ``item`` names, for a caller whose scope holds the site
    caring for them, or raise ``Rejected`` (errors never echo the NHS number). Stores
    nothing: the same keyed function as ``prepare``'s."""
    by_local_id = item.nhs_number is None and item.local_id is not None
    if by_local_id and item.source_platform is None and principal.role is not Role.PLATFORM:
        raise Rejected(422, [FieldError("source_platform", None, "name the platform whose "
                                        "local_id this is").as_dict()])
    platform = _platform(item.source_platform, principal)
    _site(item.site_id, sites, principal)
    pseudonym, errors = _resident(item.nhs_number, item.local_id, platform, key)
    if errors:
        raise Rejected(422, [e.as_dict() for e in errors])
    return pseudonym


def _platform(source_platform: str | None, principal: Principal) -> str:
    platform = source_platform or principal.sub
    if principal.role is Role.PLATFORM and platform != principal.sub:
        raise Rejected(403, [FieldError("source_platform", platform,
                                        "a platform token may only act as itself").as_dict()])
    return platform


def _site(site_id: str, sites: dict[str, KnownSite], principal: Principal) -> KnownSite:
    site = sites.get(site_id)
    if site is None:
        raise Rejected(422, [FieldError("site_id", site_id,
                                        "not a site known to ingest").as_dict()])
    if not principal.covers_site(site_id, site.icb_code, site.psc_code):
        raise Rejected(403, [FieldError("site_id", site_id,
                                        "outside this token's scope").as_dict()])
    return site


def _resident(nhs_number: str | None, local_id: str | None, platform: str, key: bytes
              ) -> tuple[str, list[FieldError]]:
    """The keyed pseudonym (NHS number first, else the platform-local id), or the error."""
    if nhs_number is not None:
        try:
            return pseudonymise(nhs_number, key), []
        except InvalidNhsNumber as exc:
            return "", [FieldError("nhs_number", WITHHELD, exc.reason)]
    if local_id is None:
        return "", [FieldError("nhs_number", None, "nhs_number or local_id is required")]
    return pseudonymise_local(platform, local_id, key), []


def _values(item: ObservationSetIn) -> dict[str, Any]:
    temperature = item.temperature
    if temperature is not None and item.temperature_unit == "F":
        temperature = rules.fahrenheit_to_celsius(temperature)
    return {"respiration_rate": item.respiration_rate, "spo2": item.spo2,
            "on_oxygen": item.on_oxygen, "systolic_bp": item.systolic_bp, "pulse": item.pulse,
            "consciousness": item.consciousness, "temperature_c": temperature}


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    return {k: decimal_text(v) if k in _DECIMALS and v is not None else v
            for k, v in values.items()}


def decimal_text(value: Decimal) -> str:
    """One spelling per number (36.50 and 36.5 are the same reading), never exponent form."""
    text = str(value)  # already canonical for a plain integer such as 96 (the usual case)
    if "." in text or "E" in text:
        text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def content_hash(row: dict[str, Any], key: bytes, withdraws: list[str] | None = None) -> str:
    """Keyed MAC of the normalised content (the resident appears only as its pseudonym), and
    of the parameters it withdraws from a recorded set, if any."""
    taken = row["taken_at"].astimezone(UTC).isoformat()  # the one datetime field
    doc = "\x1f".join([f"{name}={taken if name == 'taken_at' else row[name]}"
                        for name in _CONTENT_FIELDS])
    if withdraws:
        doc += f"\x1fwithdraws={' '.join(withdraws)}"
    mac = keyed(key, _CONTENT_TAG).copy()
    mac.update(doc.encode())
    return mac.hexdigest()[:32]


# Every stored field that makes a set what it is (not its id, arrival time or the hash).
_CONTENT_FIELDS = ("resident", "site_id", "icb_code", "psc_code", "taken_at",
                   "source_platform", "platform_set_id", "respiration_rate", "spo2",
                   "on_oxygen", "systolic_bp", "pulse", "consciousness", "temperature_c",
                   "spo2_scale_claim", "soft_signs", "client_news2_total", "recorder")
