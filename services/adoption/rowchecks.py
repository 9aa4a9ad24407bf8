"""Checks one stage submission against the register, the catalogue, the caller and the clock.

Each check returns the first reason a row is refused, naming the field. A site is found by its
code only, never by its name; an unknown code gets the closest known codes as suggestions and
is refused, never guessed at.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.adoption.domain.stages import validate_stage
from services.adoption.models import Site
from services.adoption.programmes import Catalogue
from shared.auth import Principal

CARE_HOMES = "managing-deterioration-care-homes"
TEXT = r"^[^\x00]*$"
SUGGESTIONS, CUTOFF = 3, 0.8


class SubmissionIn(BaseModel):
    """A stage report: site, programme, tool, stage 0-7, the date it applies from, a note."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site_id: str = Field(min_length=1, max_length=32, pattern=TEXT,
                         description="CQC location id (1-...) or ODS code; never a name")
    programme: str = Field(default=CARE_HOMES, min_length=1, max_length=64, pattern=TEXT)
    tool: str | None = Field(default=None, max_length=100, pattern=TEXT)
    stage: int = Field(strict=True, description="0-7; anything else is refused per row")
    applies_from: date
    note: str | None = Field(default=None, max_length=2000, pattern=TEXT)


@dataclass(frozen=True)
class Refusal:
    field: str
    reason: str
    suggestions: tuple[str, ...] = ()


@dataclass
class Register:
    """The sites a batch names, plus (lazily) every code the caller may see, for suggestions."""

    sites: dict[str, Site]
    visible_codes: list[str] = field(default_factory=list)


def check(row: SubmissionIn, *, catalogue: Catalogue, register: Register, by: Principal,
          today: date) -> Refusal | None:
    """The first reason to refuse `row`, or None if it may be applied."""
    for rule in (_programme, _site, _scope, _stage, _tool, _future, _closed):
        refusal = rule(row, catalogue, register, by, today)
        if refusal is not None:
            return refusal
    return None


def _programme(row: SubmissionIn, catalogue: Catalogue, *_: object) -> Refusal | None:
    if row.programme in catalogue.programmes:
        return None
    known = ", ".join(sorted(catalogue.programmes))
    return Refusal("programme", f"unknown programme {row.programme!r}; known programmes: {known}")


def _site(row: SubmissionIn, _: Catalogue, register: Register, *__: object) -> Refusal | None:
    if row.site_id in register.sites:
        return None
    close = difflib.get_close_matches(row.site_id, register.visible_codes, SUGGESTIONS, CUTOFF)
    hint = f"closest codes: {', '.join(close)}" if close else "no close match"
    return Refusal("site_id", f"unknown site code {row.site_id!r} ({hint})", tuple(close))


def _scope(row: SubmissionIn, _: Catalogue, register: Register, by: Principal,
           *__: object) -> Refusal | None:
    site = register.sites[row.site_id]
    if by.covers_site(site.site_id, site.icb_code, site.psc_code):
        return None
    return Refusal("site_id", f"site {site.site_id} is in PSC {site.psc_code}, outside this"
                              " token's scope")


def _stage(row: SubmissionIn, *_: object) -> Refusal | None:
    try:
        validate_stage(row.stage)
    except ValueError as exc:
        return Refusal("stage", str(exc))
    return None


def _tool(row: SubmissionIn, catalogue: Catalogue, *_: object) -> Refusal | None:
    if row.tool is None or catalogue.tool(row.programme, row.tool):
        return None
    known = ", ".join(catalogue.tool_names(row.programme))
    return Refusal("tool", f"unknown tool {row.tool!r} for programme {row.programme};"
                           f" known tools: {known}")


def _future(row: SubmissionIn, *args: object) -> Refusal | None:
    today = args[-1]
    assert isinstance(today, date)
    if row.applies_from <= today:
        return None
    return Refusal("applies_from", f"applies_from {row.applies_from} is in the future"
                                   f" (today is {today} in London)")


def _closed(row: SubmissionIn, _: Catalogue, register: Register, *__: object) -> Refusal | None:
    site = register.sites[row.site_id]
    if site.closed_on is None or row.applies_from < site.closed_on:
        return None
    return Refusal("applies_from", f"site {site.site_id} closed on {site.closed_on}, on or"
                                   f" before applies_from {row.applies_from}")
