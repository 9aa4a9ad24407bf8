"""The quarterly return as a spreadsheet: the pre-filled template and the rows uploaded back.

The template lists a PSC's sites open during the quarter with the tool and stage in force at
the quarter's end and the date that record applies from, so uploading it unchanged changes
nothing. ``site_name`` and ``icb_code`` are there for people and are ignored on upload: a site
is identified by ``site_id`` alone. A site with no report has a blank tool and date and stage 0;
such a row uploaded untouched is "unchanged". Dates are ISO (2023-03-31) or UK (31/03/2023).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import ValidationError

from services.adoption.history import Position
from services.adoption.rowchecks import CARE_HOMES, SubmissionIn
from services.adoption.spreadsheet import Table
from services.adoption.submissions import Numbered, RowResult
from shared.problems import Problem
from shared.quarters import Quarter

COLUMNS = ("site_id", "site_name", "icb_code", "programme", "tool", "stage", "applies_from",
           "note")
REQUIRED = ("site_id", "stage", "applies_from")
FIELDS = ("site_id", "programme", "tool", "stage", "applies_from", "note")
_UK_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")


def template_rows(found: list[Position]) -> list[list[Any]]:
    return [[p.site.site_id, p.site.name, p.site.icb_code, p.programme, p.tool, p.stage,
             p.applies_from, None] for p in found]


def template_notes(psc: str, quarter: Quarter, tools: list[str]) -> list[str]:
    return [f"Stage of adoption return for PSC {psc}, {quarter.label}"
            f" ({quarter.start} to {quarter.end}).",
            "Change tool, stage (0-7) and applies_from (the date the stage applies from) for"
            " sites whose position changed; leave other rows as they are.",
            "Sites are matched by site_id only; site_name and icb_code are ignored.",
            f"Tools: {', '.join(tools)}."]


def parse_rows(table: Table) -> tuple[list[Numbered], list[RowResult]]:
    """Uploaded rows as submissions; rows that cannot be read are refused naming the column."""
    missing = [c for c in REQUIRED if c not in table.header]
    if missing:
        raise Problem(422, "Missing columns", f"the header lacks {', '.join(missing)}",
                      errors=[{"field": c, "reason": "column missing from row 1"}
                              for c in missing])
    parsed: list[Numbered] = []
    refused: list[RowResult] = []
    for number, cells in table.rows:
        outcome = _parse(number, {k: _blank(cells.get(k)) for k in FIELDS})
        (parsed if isinstance(outcome, Numbered) else refused).append(outcome)  # type: ignore
    return parsed, refused


def _parse(number: int, cells: dict[str, Any]) -> Numbered | RowResult:
    site = None if cells["site_id"] is None else str(cells["site_id"]).strip()
    if cells["applies_from"] is None and cells["stage"] in (None, 0, "0") and not cells["tool"]:
        return RowResult(row=number, site_id=site, outcome="unchanged")
    for column in REQUIRED:
        if cells[column] is None:
            return _refuse(number, site, column, f"{column} is required")
    try:
        applies_from = _date(cells["applies_from"])
    except ValueError as exc:
        return _refuse(number, site, "applies_from", f"applies_from: {exc}")
    text = {k: None if cells[k] is None else str(cells[k]).strip()
            for k in ("programme", "tool", "note")}
    values = {**cells, **text, "site_id": site, "stage": _integer(cells["stage"]),
              "applies_from": applies_from,
              "programme": text["programme"] or CARE_HOMES}
    try:
        return Numbered(number, SubmissionIn.model_validate(
            {k: v for k, v in values.items() if v is not None}))
    except ValidationError as exc:
        error = exc.errors()[0]
        column = str(error["loc"][0]) if error["loc"] else "row"
        return _refuse(number, site, column, f"{column}: {error['msg']}")


def _refuse(number: int, site: str | None, column: str, reason: str) -> RowResult:
    return RowResult(row=number, site_id=site, outcome="rejected", field=column, reason=reason)


def _blank(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,6}\s*", value):
        return int(value)
    return value


def _date(value: Any) -> Any:
    if isinstance(value, str) and (m := _UK_DATE.fullmatch(value.strip())):
        try:
            return date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            raise ValueError(f"{value.strip()} is not a real date") from None
    return value.strip() if isinstance(value, str) else value
