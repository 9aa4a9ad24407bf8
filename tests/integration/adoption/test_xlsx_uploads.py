"""XLSX uploads over HTTP: a zip that would expand too far is a 413 problem naming the file
before openpyxl parses it; a body that is not a zip is a 422; honest workbooks still load."""

from __future__ import annotations

import io

import pytest

from services.adoption.spreadsheet import XLSX_MEDIA, write_xlsx
from tests.integration.adoption.conftest import ADMIN, SW, start_service
from tests.unit.adoption.xlsx_support import padded_to, workbook

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"
UNREADABLE = {"type": "about:blank", "title": "Unreadable file", "status": 422,
              "detail": "could not read the xlsx file"}


def as_file(data: bytes, name: str = "return.xlsx") -> dict:
    return {"file": (name, io.BytesIO(data), XLSX_MEDIA)}


async def test_a_zip_bomb_return_is_413_naming_the_file(client):
    r = await client.post("/stages/upload", headers=SW, files=as_file(padded_to(60_000_000)))
    assert (r.status_code, r.headers["content-type"]) == (413, PROBLEM)
    assert r.json() == {
        "type": "about:blank", "title": "Content Too Large", "status": 413,
        "instance": "/stages/upload",
        "detail": "the xlsx file expands to more than 50000000 bytes",
        "errors": [{"field": "file", "reason": "60000000 bytes uncompressed; at most 50000000"}]}


async def test_a_raw_xlsx_body_with_too_many_parts_is_413(client):
    crowd = workbook(extra={f"customXml/item{i}.xml": b"<a/>" for i in range(996)})
    r = await client.post("/sites/load", headers={**ADMIN, "content-type": XLSX_MEDIA},
                          content=crowd)
    assert (r.status_code, r.headers["content-type"]) == (413, PROBLEM)
    assert r.json() == {
        "type": "about:blank", "title": "Content Too Large", "status": 413,
        "instance": "/sites/load", "detail": "the xlsx file holds more than 1000 parts",
        "errors": [{"field": "file", "reason": "1001 zip members; at most 1000"}]}


async def test_a_body_that_is_not_a_zip_sent_as_xlsx_is_422(client):
    r = await client.post("/sites/load", headers={**ADMIN, "content-type": XLSX_MEDIA},
                          content=b"site_id,name\r\n1-1,Not a workbook\r\n")
    assert (r.status_code, r.headers["content-type"]) == (422, PROBLEM)
    assert r.json() == {**UNREADABLE, "instance": "/sites/load",
                        "errors": [{"field": "file", "reason": "BadZipFile"}]}
    r = await client.post("/stages/upload", headers=SW, files=as_file(b"%PDF-1.7"))
    assert r.json() == {**UNREADABLE, "instance": "/stages/upload",
                        "errors": [{"field": "file", "reason": "BadZipFile"}]}


async def test_the_limit_is_the_services_setting(tmp_path):
    svc, manager = await start_service(tmp_path, load_care_homes=False,
                                       max_xlsx_uncompressed_bytes=200_000)
    try:
        r = await svc.client.post("/sites/load", headers=ADMIN,
                                  files=as_file(padded_to(200_001), "homes.xlsx"))
        assert r.status_code == 413
        assert r.json()["errors"] == [
            {"field": "file", "reason": "200001 bytes uncompressed; at most 200000"}]
        header = ["location_id", "name", "icb_ods_code", "number_of_beds",
                  "care_home_with_nursing", "registration_date", "registration_status"]
        home = write_xlsx(header, [["1-302", "Small Home", "QJK", 4, "N", None, "Registered"]],
                          title="homes")
        r = await svc.client.post("/sites/load", headers=ADMIN, files=as_file(home, "h.xlsx"))
        assert (r.status_code, r.json()["created"]) == (200, 1)
    finally:
        await svc.client.aclose()
        await manager.__aexit__(None, None, None)
