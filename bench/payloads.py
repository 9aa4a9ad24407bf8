"""Request bodies built before the clock starts: ingest's native JSON sets and FHIR Bundles.

Every set is unique (its own ``platform_set_id`` and resident-time), so the service does the
full write path and never the duplicate short-cut. NHS numbers are synthetic, in the 999
range, with a valid modulus-11 check digit.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.dataset import Home

LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
SITE_EXT = "https://fhir.mandet.example/StructureDefinition/site-id"
ACVPU_SNOMED = {"A": "248234008", "C": "130987000", "V": "300202002",
                "P": "450847001", "U": "422768004"}


def nhs_number(n: int) -> str | None:
    """A 999-range NHS number from ``n``, or None when its check digit would be 10."""
    first_nine = f"999{n % 1_000_000:06d}"
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 10:
        return None
    return first_nine + str(0 if check == 11 else check)


def observation_sets(homes: Sequence[Home], count: int, *, seed: int = 7,
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """``count`` distinct native sets from residents of ``homes`` (taken in the last 6 h)."""
    rnd = random.Random(seed)
    now = now or datetime.now(UTC)
    out = []
    for i in range(count):
        home = homes[i % len(homes)]
        resident = rnd.randrange(home.residents)
        taken = now - timedelta(seconds=rnd.randint(60, 6 * 3600), microseconds=i % 1_000_000)
        out.append(_one_set(rnd, home, resident, taken, i))
    return out


def _one_set(rnd: random.Random, home: Home, resident: int, taken: datetime,
             i: int) -> dict[str, Any]:
    number = nhs_number(zlib.crc32(f"{home.site_id}/{resident}".encode()))
    who = {"nhs_number": number} if number else {"local_id": f"{home.site_id}-r{resident}"}
    return {**who, "site_id": home.site_id, "taken_at": taken.isoformat(),
            "respiration_rate": rnd.randint(10, 26), "spo2": rnd.randint(90, 100),
            "on_oxygen": rnd.random() < 0.1, "systolic_bp": rnd.randint(90, 180),
            "pulse": rnd.randint(50, 120), "consciousness": rnd.choice("AAAAAAAAAC"),
            "temperature": round(rnd.uniform(35.5, 39.0), 1), "temperature_unit": "C",
            "platform_set_id": f"bench-{i}-{rnd.getrandbits(32):08x}"}


def encode(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def batches(sets: Sequence[dict[str, Any]], size: int) -> list[bytes]:
    return [encode({"items": list(sets[i:i + size])}) for i in range(0, len(sets), size)]


def fhir_bundle(sets: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A batch Bundle: each native set becomes seven Observations (one per NEWS2 parameter)."""
    entries = [{"resource": r, "request": {"method": "POST", "url": "Observation"}}
               for s in sets for r in _observations(s)]
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


OBSERVATIONS_PER_SET = 7


def _observations(s: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"resourceType": "Observation", "status": "final",
            "subject": {"identifier": {"system": NHS_SYSTEM, "value": s["nhs_number"]}}
            if "nhs_number" in s else {"reference": f"Patient/{s['local_id']}"},
            "effectiveDateTime": s["taken_at"],
            "extension": [{"url": SITE_EXT, "valueIdentifier": {"value": s["site_id"]}}]}

    def obs(system: str, code: str, **value: Any) -> dict[str, Any]:
        return {**base, "code": {"coding": [{"system": system, "code": code}]}, **value}

    def qty(value: Any, unit: str) -> dict[str, Any]:
        return {"valueQuantity": {"value": value, "system": UCUM, "code": unit}}

    acvpu = {"valueCodeableConcept": {"coding": [{"system": SNOMED,
                                                  "code": ACVPU_SNOMED[s["consciousness"]]}]}}
    return [obs(LOINC, "9279-1", **qty(s["respiration_rate"], "/min")),
            obs(LOINC, "2708-6", **qty(s["spo2"], "%")),
            obs(SNOMED, "371825009" if s["on_oxygen"] else "722742002"),
            obs(LOINC, "8480-6", **qty(s["systolic_bp"], "mm[Hg]")),
            obs(LOINC, "8867-4", **qty(s["pulse"], "/min")),
            obs(SNOMED, "1104441000000107", **acvpu),
            obs(LOINC, "8310-5", **qty(s["temperature"], "Cel"))]
