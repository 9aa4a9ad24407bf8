"""The quarterly return: download the pre-filled template, fill it, upload it (dry run, real)."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from services.adoption.spreadsheet import XLSX_MEDIA
from tests.integration.adoption.conftest import ADMIN, HOME, OTHER_HOME, SW

pytestmark = pytest.mark.integration
QUARTER = "2022/23 Q4"


async def template(client, fmt: str, headers=SW) -> bytes:
    r = await client.get(f"/pscs/SW/template?quarter={QUARTER}&format={fmt}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == (
        f'attachment; filename="return-SW-2022-23-Q4.{fmt}"')
    return r.content


async def upload(client, name: str, data: bytes, dry_run: bool = False) -> dict:
    media = XLSX_MEDIA if name.endswith(".xlsx") else "text/csv"
    r = await client.post(f"/stages/upload?dry_run={str(dry_run).lower()}", headers=SW,
                          files={"file": (name, io.BytesIO(data), media)})
    assert r.status_code == 200, r.text
    return r.json()


def fill_csv(data: bytes, changes: dict[str, dict[str, str]]) -> bytes:
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    for row in rows:
        row.update(changes.get(row["site_id"], {}))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


async def test_csv_template_is_prefilled_and_uploads_unchanged_as_is(client):
    await client.post("/stages", headers=SW, json={"site_id": HOME, "tool": "NEWS2",
                                                   "stage": 4, "applies_from": "2022-11-01"})
    data = await template(client, "csv")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == 728
    assert next(r for r in rows if r["site_id"] == HOME) == {
        "site_id": HOME, "site_name": "27 Little Week", "icb_code": "QJK",
        "programme": "managing-deterioration-care-homes", "tool": "NEWS2", "stage": "4",
        "applies_from": "2022-11-01", "note": ""}
    back = await upload(client, "return.csv", data)
    assert (back["unchanged"], back["applied"], back["rejected"]) == (728, 0, 0)


async def test_fill_dry_run_then_upload_for_real_then_see_the_transitions(client):
    data = fill_csv(await template(client, "csv"), {
        HOME: {"tool": "RESTORE2", "stage": "5", "applies_from": "2023-03-01"},
        OTHER_HOME: {"tool": "Soft signs", "stage": "3", "applies_from": "15/02/2023",
                     "note": "trained two carers"},
    })
    dry = await upload(client, "return.csv", data, dry_run=True)
    assert (dry["dry_run"], dry["applied"], dry["unchanged"]) == (True, 2, 726)
    assert (await client.get(f"/sites/{HOME}/stages", headers=SW)).json()["history"] == []
    real = await upload(client, "return.csv", data)
    applied = {r["site_id"]: r["transition"] for r in real["rows"] if r["outcome"] == "applied"}
    assert applied == {
        HOME: {"from_tool": None, "from_stage": 0, "to_tool": "NEWS2 and soft signs",
               "to_stage": 5, "is_correction": False, "flags": []},
        OTHER_HOME: {"from_tool": None, "from_stage": 0, "to_tool": "Soft signs",
                     "to_stage": 3, "is_correction": False, "flags": []}}
    history = (await client.get(f"/sites/{OTHER_HOME}/stages", headers=SW)).json()["history"]
    assert [(h["applies_from"], h["stage"], h["note"]) for h in history] == [
        ("2023-02-15", 3, "trained two carers")]
    again = fill_csv(await template(client, "csv"), {})
    assert (await upload(client, "return.csv", again))["unchanged"] == 728


async def test_xlsx_template_round_trips_and_can_be_filled(client):
    data = await template(client, "xlsx")
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["return", "about"]
    sheet = book["return"]
    header = [c.value for c in sheet[1]]
    assert header[:7] == ["site_id", "site_name", "icb_code", "programme", "tool", "stage",
                          "applies_from"]
    assert sheet.max_row == 729
    assert (await upload(client, "return.xlsx", data))["unchanged"] == 728
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == HOME:
            row[4].value, row[5].value = "Stop and Watch", 4
            row[6].value = date(2023, 1, 9)
    out = io.BytesIO()
    book.save(out)
    result = await upload(client, "return.xlsx", out.getvalue())
    assert (result["applied"], result["unchanged"]) == (1, 727)
    [applied] = [r for r in result["rows"] if r["outcome"] == "applied"]
    assert applied["transition"]["to_tool"] == "Stop and Watch"


async def test_upload_errors_name_the_row_and_the_column(client):
    data = (b"site_id,stage,applies_from,tool\r\n"
            b"1-5868490225,7x,2023-01-01,\r\n"
            b"1-5868490225,3,,NEWS2\r\n"
            b"1-586849022,3,2023-01-01,\r\n"
            b"1-5868490225,3,2023-01-01,Magic\r\n")
    body = await upload(client, "return.csv", data)
    assert [(r["row"], r["field"], r["reason"]) for r in body["rows"]] == [
        (2, "stage", "stage: Input should be a valid integer"),
        (3, "applies_from", "applies_from is required"),
        (4, "site_id", "unknown site code '1-586849022' (closest codes: 1-5868490225)"),
        (5, "tool", "unknown tool 'Magic' for programme managing-deterioration-care-homes;"
                    " known tools: NEWS2, NEWS2 and soft signs, Soft signs, Stop and Watch,"
                    " Tool undecided"),
    ]
    missing = await client.post("/stages/upload", headers=SW, files={
        "file": ("r.csv", io.BytesIO(b"site_id,tool\r\n1-1,NEWS2\r\n"), "text/csv")})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["stage", "applies_from"]


async def test_template_refuses_other_pscs_and_unknown_programmes(client):
    r = await client.get(f"/pscs/UCLP/template?quarter={QUARTER}", headers=SW)
    assert r.status_code == 403
    r = await client.get(f"/pscs/SW/template?quarter={QUARTER}&programme=nope", headers=ADMIN)
    assert r.status_code == 404
