"""An XLSX upload is a zip: refused before openpyxl parses it if it would expand too far or is
not an honest zip, and its sheet read with bounded rows and cells (no database)."""

from __future__ import annotations

import io
import zipfile
import zlib

import pytest

from services.adoption.spreadsheet import read_table
from shared.problems import Problem
from shared.settings import load_settings
from tests.unit.adoption.xlsx_support import (
    HEADER_ROW,
    SHEET,
    WORKBOOK,
    cell,
    forged,
    padded_to,
    row,
    sheet_xml,
    understated,
    workbook,
)


def refusal(data: bytes, **limits: int) -> tuple[int, str, str | None, list | None]:
    with pytest.raises(Problem) as exc:
        read_table(data, "xlsx", **{"max_rows": 20_000, **limits})
    return exc.value.status, exc.value.title, exc.value.detail, exc.value.errors


def declared_total(data: bytes) -> int:  # read with zipfile itself, to check the fixture
    return sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist())


def test_a_minimal_workbook_is_read():
    data = workbook(sheet_xml(HEADER_ROW, row(2, cell("A2", "1-5868490225"))))
    table = read_table(data, "xlsx", max_rows=10)
    assert (table.header, table.rows) == (["site_id"], [(2, {"site_id": "1-5868490225"})])


def test_a_sheet_that_expands_to_60_mb_is_refused_by_its_declared_size():
    bomb = padded_to(60_000_000)
    assert len(bomb) < 100_000 and declared_total(bomb) == 60_000_000
    assert refusal(bomb) == (
        413, "Content Too Large", "the xlsx file expands to more than 50000000 bytes",
        [{"field": "file", "reason": "60000000 bytes uncompressed; at most 50000000"}])


def test_the_uncompressed_limit_is_the_callers_and_inclusive():
    assert read_table(padded_to(300_000), "xlsx", max_rows=10,
                      max_uncompressed=300_000).header == ["site_id"]
    assert refusal(padded_to(300_001), max_uncompressed=300_000) == (
        413, "Content Too Large", "the xlsx file expands to more than 300000 bytes",
        [{"field": "file", "reason": "300001 bytes uncompressed; at most 300000"}])


def test_a_part_over_1_mb_compressed_more_than_100_to_1_is_refused():
    squeezed = workbook(sheet_xml(padding=5_000_000))  # under the total, but ~1000:1
    assert refusal(squeezed) == (
        413, "Content Too Large", "a part of the xlsx file expands more than 100:1",
        [{"field": "file", "reason": "'xl/worksheets/sheet1.xml' expands more than 100:1"}])
    small = workbook(sheet_xml(padding=900_000))  # as squeezed, but under 1 MB: allowed
    assert read_table(small, "xlsx", max_rows=10).header == ["site_id"]


def test_more_than_1000_parts_is_refused_and_1000_are_not():
    crowd = {f"customXml/item{i}.xml": b"<a/>" for i in range(996)}  # 5 parts + 996
    assert refusal(workbook(extra=crowd)) == (
        413, "Content Too Large", "the xlsx file holds more than 1000 parts",
        [{"field": "file", "reason": "1001 zip members; at most 1000"}])
    crowd.pop("customXml/item0.xml")
    assert read_table(workbook(extra=crowd), "xlsx", max_rows=10).header == ["site_id"]


@pytest.mark.parametrize("junk", [b"not a zip", b"PK\x03\x04" + b"\x00" * 60, b""])
def test_a_body_that_is_not_a_zip_is_422(junk):
    assert refusal(junk) == (422, "Unreadable file", "could not read the xlsx file",
                             [{"field": "file", "reason": "BadZipFile"}])


def test_a_part_that_inflates_past_its_declared_size_is_refused_before_it_is_read():
    # 2 MB of real content declared as its first 1,000 bytes, with their CRC: the sizes and
    # ratios pass, so only inflating the part (boundedly) shows the lie.
    real = b"<" + b" " * 2_000_000
    assert refusal(understated(real, real[:1000])) == (
        422, "Unreadable file", "could not read the xlsx file",
        [{"field": "file",
          "reason": "'xl/workbook.xml' does not match its declared size and CRC"}])


@pytest.mark.parametrize("lie", [{"crc": 0}, {"size": len(sheet_xml()) + 1},
                                 {"size": len(sheet_xml()) - 1}])
def test_a_part_whose_declared_size_or_crc_is_wrong_is_refused(lie):
    assert refusal(forged(workbook(), SHEET, **lie)) == (
        422, "Unreadable file", "could not read the xlsx file",
        [{"field": "file",
          "reason": "'xl/worksheets/sheet1.xml' does not match its declared size and CRC"}])


def test_stored_parts_are_verified_too():
    stored = workbook(compression=zipfile.ZIP_STORED)
    assert read_table(stored, "xlsx", max_rows=10).header == ["site_id"]
    assert refusal(forged(stored, SHEET, crc=zlib.crc32(b"other"))) == (
        422, "Unreadable file", "could not read the xlsx file",
        [{"field": "file",
          "reason": "'xl/worksheets/sheet1.xml' does not match its declared size and CRC"}])


def test_parts_compressed_other_than_stored_or_deflated_are_refused():
    # bzip2 and lzma inflate a whole read in one call, with no bound on the output
    assert refusal(workbook(compression=zipfile.ZIP_BZIP2)) == (
        422, "Unreadable file", "could not read the xlsx file",
        [{"field": "file", "reason": "'[Content_Types].xml' uses zip compression method 12;"
                                     " xlsx parts are stored or deflated"}])


@pytest.mark.parametrize("flags", [0x1, 0x20, 0x40])  # encrypted, patch data, strong crypto
def test_an_encrypted_or_patched_part_is_refused(flags):
    assert refusal(forged(workbook(), "xl/workbook.xml", flags=flags)) == (
        422, "Unreadable file", "could not read the xlsx file",
        [{"field": "file", "reason": "'xl/workbook.xml' is encrypted or patched"}])


def test_a_workbook_without_a_worksheet_is_422_not_a_crash():
    empty = WORKBOOK.replace(b'<sheet name="return" sheetId="1" r:id="rId1"/>', b"")
    assert empty != WORKBOOK
    assert refusal(workbook(replacing={"xl/workbook.xml": empty})) == (
        422, "Unreadable file", "could not read the xlsx file",
        [{"field": "file", "reason": "the workbook has no worksheet"}])


def test_malformed_sheet_xml_is_422_not_a_crash():
    assert refusal(workbook(b"<worksheet><sheetData><row")) == (
        422, "Unreadable file", "could not read the xlsx file",
        [{"field": "file", "reason": "ParseError"}])


def test_a_declared_sheet_dimension_is_ignored():
    # Before the bound, openpyxl padded every row to column XFD and yielded all 100,000 rows
    # of the claimed size: minutes of work from a 1.5 KB upload.
    sheet = sheet_xml(HEADER_ROW, row(2, cell("A2", "1-1")), row(100_000, cell("A100000", "1-9")),
                      dimension="A1:XFD1048576")
    table = read_table(workbook(sheet), "xlsx", max_rows=10)
    assert (table.header, table.rows) == (
        ["site_id"], [(2, {"site_id": "1-1"}), (100_000, {"site_id": "1-9"})])


def test_a_sheet_past_the_last_spreadsheet_row_is_refused():
    sheet = sheet_xml(HEADER_ROW, row(2_000_000_000, cell("A2000000000", "1-1")))
    assert refusal(workbook(sheet)) == (
        413, "Content Too Large", "the sheet goes past row 1048576",
        [{"field": "file", "reason": "rows past 1048576"}])


def test_rows_may_span_250_cells_per_allowed_row_in_all():
    # one empty cell at column XFD makes a row 16,384 cells wide; max_rows=2 allows 500 cells
    wide = sheet_xml(HEADER_ROW, row(2, cell("A2", "1-1"), '<c r="XFD2"/>'))
    assert refusal(workbook(wide), max_rows=2) == (
        413, "Content Too Large", "the sheet spans more than 500 cells",
        [{"field": "file", "reason": "more than 500 cells by row 2"}])
    table = read_table(workbook(wide), "xlsx", max_rows=100)  # 25,000 cells allowed
    assert table.rows == [(2, {"site_id": "1-1"})]


def test_the_setting_defaults_to_50_mb_and_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("ADOPTION_MAX_XLSX_UNCOMPRESSED_BYTES", raising=False)
    monkeypatch.delenv("MANDET_MAX_XLSX_UNCOMPRESSED_BYTES", raising=False)
    assert load_settings("adoption").max_xlsx_uncompressed_bytes == 50_000_000
    monkeypatch.setenv("ADOPTION_MAX_XLSX_UNCOMPRESSED_BYTES", "2000000")
    assert load_settings("adoption").max_xlsx_uncompressed_bytes == 2_000_000
