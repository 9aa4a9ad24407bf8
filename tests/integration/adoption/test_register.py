"""The site register: the shipped homes at start-up, bulk loads over HTTP and the CLI."""

from __future__ import annotations

import io
import time

import pytest
from sqlalchemy import func, select

from services.adoption.loadfile import load_file, summary_lines
from services.adoption.reference import DATA
from shared.outbox import OUTBOX
from shared.settings import load_settings
from tests.integration.adoption.conftest import ADMIN, DASHBOARD, LONDON, SW, start_service

pytestmark = pytest.mark.integration

HEADER = ("location_id,name,icb_ods_code,number_of_beds,care_home_with_nursing,"
          "registration_date,registration_status\n")


def csv_file(*lines: str) -> dict:
    body = (HEADER + "".join(f"{line}\n" for line in lines)).encode()
    return {"file": ("homes.csv", io.BytesIO(body), "text/csv")}


async def outbox_types(svc) -> list[str]:
    async with svc.runtime.db.session() as session:
        rows = (await session.execute(select(OUTBOX.c.event_type).order_by(OUTBOX.c.seq))).all()
    return [r[0] for r in rows]


async def test_start_up_loads_the_728_shipped_homes_each_with_site_registered(svc):
    sites = await svc.client.get("/sites?limit=1000", headers=DASHBOARD)
    assert len(sites.json()) == 728
    assert {s["psc_code"] for s in sites.json()} == {"SW"}
    assert await outbox_types(svc) == ["SiteRegistered"] * 728
    home = (await svc.client.get("/sites/1-5868490225", headers=SW)).json()
    assert (home["name"], home["icb_code"], home["beds"], home["nursing"], home["opened_on"]) \
        == ("27 Little Week", "QJK", 2, False, "2018-10-23")


async def test_homes_load_only_into_an_empty_register_and_can_be_switched_off(tmp_path):
    svc, manager = await start_service(tmp_path)
    await manager.__aexit__(None, None, None)
    again, manager = await start_service(tmp_path)  # same files: nothing loaded twice
    try:
        assert len(await outbox_types(again)) == 728
    finally:
        await manager.__aexit__(None, None, None)
    bare, manager = await start_service(tmp_path / "bare", load_care_homes=False)
    try:
        assert (await bare.client.get("/sites", headers=ADMIN)).json() == []
    finally:
        await manager.__aexit__(None, None, None)


async def test_bulk_load_reports_created_updated_unchanged_rejected_per_row(svc):
    r = await svc.client.post("/sites/load", headers=ADMIN, files=csv_file(
        "1-5868490225,27 Little Week,QJK,2,N,2018-10-23,Registered",   # as shipped
        "1-5868490225,27 Little Week,QJK,3,N,2018-10-23,Registered",   # beds 2 -> 3
        "1-100,New Home,QSL,40,Y,2024-01-02,Registered",
        "1-101,Elsewhere,ZZZ,40,Y,2024-01-02,Registered",
        "1-102,No beds,QSL,lots,Y,2024-01-02,Registered",
    ))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (1, 1, 1, 2)
    assert [(x["row"], x["outcome"], x["field"], x["reason"]) for x in body["rows"]] == [
        (2, "unchanged", None, None),
        (3, "updated", None, None),
        (4, "created", None, None),
        (5, "rejected", "icb_ods_code", "unknown ICB 'ZZZ': not a known ICB ODS code"),
        (6, "rejected", "number_of_beds",
         "number_of_beds: Input should be a valid integer, unable to parse string as an integer"),
    ]
    assert (await outbox_types(svc))[728:] == ["SiteUpdated", "SiteRegistered"]
    home = (await svc.client.get("/sites/1-5868490225", headers=SW)).json()
    assert (home["beds"], home["revision"]) == (3, 2)


async def test_bulk_load_dry_run_writes_nothing(svc):
    r = await svc.client.post("/sites/load?dry_run=true", headers=ADMIN, files=csv_file(
        "1-5868490225,Renamed,QJK,2,N,2018-10-23,Registered", "1-100,New,QSL,4,N,,Registered"))
    assert (r.json()["updated"], r.json()["created"], r.json()["dry_run"]) == (1, 1, True)
    assert (await svc.client.get("/sites/1-5868490225", headers=SW)).json()["name"] \
        == "27 Little Week"
    assert (await svc.client.get("/sites/1-100", headers=ADMIN)).status_code == 404
    assert len(await outbox_types(svc)) == 728


async def test_psc_token_loads_only_its_own_sites(svc):
    files = csv_file("1-200,Devon Home,QJK,10,N,,Registered",
                     "1-201,London Home,QMJ,10,N,,Registered")
    r = await svc.client.post("/sites/load", headers=SW, files=files)
    assert [(x["outcome"], x["reason"]) for x in r.json()["rows"]] == [
        ("created", None), ("rejected", "site 1-201 is in PSC UCLP, outside this token's scope")]
    # London may not pull a Devon home into its own ICB either
    r = await svc.client.post("/sites/load", headers=LONDON,
                              files=csv_file("1-5868490225,Moved,QMJ,2,N,,Registered"))
    assert r.json()["rows"][0]["reason"] == ("site 1-5868490225 is in PSC SW, outside this"
                                             " token's scope")


async def test_a_raw_csv_body_works_too_and_an_xlsx_upload_is_read(svc):
    body = (HEADER + "1-300,Raw Home,QJK,5,N,,Registered\n").encode()
    r = await svc.client.post("/sites/load", headers={**ADMIN, "content-type": "text/csv"},
                              content=body)
    assert r.json()["created"] == 1
    from services.adoption.spreadsheet import XLSX_MEDIA, write_xlsx

    data = write_xlsx(HEADER.strip().split(","), [["1-301", "Xlsx Home", "QSL", 7, "Y", None,
                                                   "Registered"]], title="homes")
    r = await svc.client.post("/sites/load", headers=ADMIN,
                              files={"file": ("homes.xlsx", io.BytesIO(data), XLSX_MEDIA)})
    assert r.json()["created"] == 1
    assert (await svc.client.get("/sites/1-301", headers=ADMIN)).json()["nursing"] is True


async def test_uploads_are_bounded_and_typed(tmp_path):
    svc, manager = await start_service(tmp_path, load_care_homes=False, max_upload_bytes=2000,
                                       max_upload_rows=2)
    try:
        big = csv_file(*[f"1-{i},Home {i},QJK,{i},N,,Registered" for i in range(100)])
        r = await svc.client.post("/sites/load", headers=ADMIN, files=big)
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        rows = csv_file(*[f"1-{i},H,QJK,1,N,,Registered" for i in range(3)])
        r = await svc.client.post("/sites/load", headers=ADMIN, files=rows)
        assert (r.status_code, r.json()["detail"]) == (413, "more than 2 rows")
        pdf = {"file": ("homes.pdf", io.BytesIO(b"%PDF"), "application/pdf")}
        r = await svc.client.post("/sites/load", headers=ADMIN, files=pdf)
        assert r.status_code == 415

        async def chunks():
            yield HEADER.encode()

        r = await svc.client.post("/sites/load", headers={**ADMIN, "content-type": "text/csv"},
                                  content=chunks())  # chunked: no Content-Length
        assert r.status_code == 411
    finally:
        await manager.__aexit__(None, None, None)


async def test_cli_loader_loads_the_728_homes_quickly_then_finds_them_unchanged(tmp_path):
    settings = load_settings("adoption", data_dir=tmp_path)
    started = time.perf_counter()
    report = await load_file(DATA / "care_homes.csv", settings=settings, progress=False)
    elapsed = time.perf_counter() - started
    assert (report.created, report.rejected) == (728, 0)
    assert elapsed < 3.0, f"728 homes took {elapsed:.2f} s"
    print(f"\n728 homes bulk-loaded on SQLite in {elapsed:.2f} s")
    again = await load_file(DATA / "care_homes.csv", settings=settings, progress=False)
    assert summary_lines(again) == ["created 0, updated 0, unchanged 728, rejected 0"]
    svc, manager = await start_service(tmp_path)
    try:
        async with svc.runtime.db.session() as session:
            count = (await session.execute(select(func.count()).select_from(OUTBOX))).scalar()
        assert count == 728  # the start-up step saw a full register and loaded nothing
    finally:
        await manager.__aexit__(None, None, None)


def test_mandet_sites_load_command_prints_the_report_and_fails_on_rejections(
        tmp_path, monkeypatch, capsys):
    from mandet.cli import main

    monkeypatch.setenv("MANDET_DATA_DIR", str(tmp_path / "data"))
    good = tmp_path / "homes.csv"
    good.write_text(HEADER + "1-400,Cli Home,QJK,5,N,,Registered\n")
    main(["sites-load", str(good)])
    assert capsys.readouterr().out.splitlines()[-1] == (
        "created 1, updated 0, unchanged 0, rejected 0")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "1-401,Cli Home,ZZZ,5,N,,Registered\n")
    with pytest.raises(SystemExit) as exc:
        main(["sites-load", "--dry-run", str(bad)])
    assert exc.value.code == 1
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "dry run: created 0, updated 0, unchanged 0, rejected 1",
        "  row 2 (1-401): unknown ICB 'ZZZ': not a known ICB ODS code"]
