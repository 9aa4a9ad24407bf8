"""The reports HTTP API over SQLite and PostgreSQL: views, CSV, freshness, scope, validation."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from services.reports.bootstrap import create_app
from shared.auth import Role
from shared.bus.base import Record
from shared.bus.memory import MemoryBus
from shared.events import encode
from shared.inbox import INBOX
from tests.integration.reports.support import (
    flag,
    observation,
    reports_runtime,
    score,
    score_withdrawal,
    site,
    stage,
    withdrawal,
)

pytestmark = pytest.mark.integration
TOPIC = {"SiteRegistered": "adoption.sites", "SiteUpdated": "adoption.sites",
         "SiteClosed": "adoption.sites", "StageChanged": "adoption.stages",
         "ObservationRecorded": "ingest.observations", "ScoreComputed": "scoring.scores",
         "DeteriorationFlagged": "scoring.scores",
         "ObservationSetWithdrawn": "ingest.observations", "ScoreWithdrawn": "scoring.scores"}
T = datetime(2022, 11, 3, 10, 0, tzinfo=UTC)   # in 2022/23 Q3
EVENTS = [
    site("1-A"), site("1-B"), site("1-C", "QUY"), site("1-D", "QHL"),
    stage("1-A", 3, date(2022, 5, 1)), stage("1-A", 5, date(2022, 11, 1)),
    stage("1-B", 7, date(2022, 8, 1), tool="Soft signs"),
    stage("1-D", 2, date(2022, 4, 10), icb="QHL"),
    observation("1-B", "p1_x", T), observation("1-B", "p1_x", T), observation("1-D", "p1_y", T,
                                                                              icb="QHL"),
    score("1-B", "p1_x", T, total=7, risk="high"), score("1-B", "p1_x", T, total=None, risk=None,
                                                         mismatch=True),
    flag("1-B", "p1_x", T),
]


async def committed(runtime) -> int:
    async with runtime.db.session() as session:
        return (await session.execute(select(func.count()).select_from(INBOX))).scalar_one()


@asynccontextmanager
async def serving(tmp_path, url: str | None):
    bus = MemoryBus(partitions=3)
    runtime = reports_runtime(tmp_path, url, bus=bus, relay_poll_seconds=0.01)
    app = create_app(runtime)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reports") as client:
            await bus.publish([Record(TOPIC[e.type], e.subject, encode(e)) for e in EVENTS])
            deadline = asyncio.get_running_loop().time() + 10
            while await committed(runtime) < len(EVENTS):   # inbox rows: committed effects
                assert asyncio.get_running_loop().time() < deadline, "events not applied"
                await asyncio.sleep(0.02)
            client.tokens, client.bus, client.runtime = runtime.tokens, bus, runtime
            yield client


@pytest.fixture(params=["sqlite", "postgres"])
async def api(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    async with serving(tmp_path, url) as client:
        yield client


@pytest.fixture
async def sqlite_api(tmp_path):
    async with serving(tmp_path, None) as client:
        yield client


def auth(client, role: Role, **scope) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.tokens.issue('t', role, **scope)}"}


async def test_adoption_json_with_numerators_denominators_and_freshness(api):
    r = await api.get("/adoption", params={"quarter": "2022/23 Q3"},
                      headers=auth(api, Role.DASHBOARD))
    assert r.status_code == 200, r.text
    body = r.json()
    [row] = body["rows"]
    assert row["quarter"] == "2022/23 Q3" and row["code"] == "ENG"
    assert row["stages"] == {"0": 1, "1": 0, "2": 1, "3": 0, "4": 0, "5": 1, "6": 0, "7": 1}
    assert row["measures"]["ge3"] == {"numerator": 2, "denominator": 4, "percent": 50.0,
                                      "change_numerator": 0, "change_points": 0.0}
    assert row["ambitions"]["sustained"] == {"measure": "eq7", "target_percent": 40.0,
                                             "met": False}
    fresh = body["freshness"]
    assert fresh["last_event"]["id"] and fresh["age_seconds"] >= 0
    assert fresh["horizon"] == "2023/24 Q2"
    assert r.headers["x-last-event-time"]


async def publish_and_wait(api, changes) -> None:
    before = await committed(api.runtime)
    await api.bus.publish([Record(TOPIC[e.type], e.subject, encode(e)) for e in changes])
    deadline = asyncio.get_running_loop().time() + 10
    while await committed(api.runtime) < before + len(changes):
        assert asyncio.get_running_loop().time() < deadline, "events not applied"
        await asyncio.sleep(0.02)


async def test_cached_views_follow_register_and_stage_changes(api):
    """Adoption rows are cached per views stamp: a closure, an opening or a late stage record
    must show in the very next read."""
    async def q3() -> dict[str, tuple[int, int]]:
        r = await api.get("/adoption", params={"quarter": "2022/23 Q3", "level": "icb"},
                          headers=auth(api, Role.DASHBOARD))
        assert r.status_code == 200, r.text
        return {row["code"]: (row["denominator"], row["measures"]["ge3"]["numerator"])
                for row in r.json()["rows"]}

    assert await q3() == {"QHL": (1, 0), "QJK": (2, 2), "QUY": (1, 0)}
    assert await q3() == {"QHL": (1, 0), "QJK": (2, 2), "QUY": (1, 0)}   # from the cache
    await publish_and_wait(api, [site("1-A", revision=2, closed=date(2022, 10, 15)),
                                 site("1-E", "QUY"), stage("1-C", 4, date(2022, 6, 1), icb="QUY")])
    assert await q3() == {"QHL": (1, 0), "QJK": (1, 1), "QUY": (2, 1)}


async def test_cached_activity_quality_and_transitions_follow_every_event(api):
    """Activity and quality are cached per (views stamp, quarter version), transitions per
    views stamp: an observation, a move or a stage record must show in the next read."""
    dash = auth(api, Role.DASHBOARD)

    async def read() -> tuple[dict, list, dict]:
        q3 = {"quarter": "2022/23 Q3"}
        act = (await api.get("/activity", params={**q3, "level": "icb"}, headers=dash)).json()
        quality = (await api.get("/quality", params=q3, headers=dash)).json()
        moves = (await api.get("/transitions", params={**q3, "level": "icb"},
                               headers=dash)).json()
        return ({r["code"]: r["observation_sets"] for r in act["rows"]},
                sorted((r["check"], i["site_id"]) for r in quality["rows"]
                       if r["check"] != "stale_pscs" for i in r["items"]),
                {r["code"]: r["up"] for r in moves["rows"] if r["programme"] == "care-homes"})

    first = await read()
    assert first == ({"QJK": 2, "QHL": 1}, [("observations_below_stage4", "1-D"),
                                            ("stage5_without_observations", "1-A")],
                     {"QHL": 0, "QJK": 1, "QUY": 0})
    assert await read() == first   # from the cache
    await publish_and_wait(api, [observation("1-C", "p1_z", T, icb="QUY")])
    assert await read() == ({"QJK": 2, "QHL": 1, "QUY": 1},
                            [("observations_below_stage4", "1-C"),
                             ("observations_below_stage4", "1-D"),
                             ("stage5_without_observations", "1-A")],
                            {"QHL": 0, "QJK": 1, "QUY": 0})
    await publish_and_wait(api, [site("1-D", "QUY", revision=2),
                                 stage("1-C", 3, date(2022, 10, 1), icb="QUY")])
    assert await read() == ({"QJK": 2, "QUY": 2}, [("observations_below_stage4", "1-C"),
                                                   ("observations_below_stage4", "1-D"),
                                                   ("stage5_without_observations", "1-A")],
                            {"QJK": 1, "QUY": 1})


async def test_readings_in_one_quarter_recompute_only_that_quarter(api, monkeypatch):
    """Activity is cached per quarter under that quarter's version, data quality under its
    data-quality version: a reading taken in Q3 recomputes Q3's activity alone, and its
    data quality only if it starts a site's observations there (as does a withdrawal that
    ends them), never its stale PSCs (of returns and the register: under the views stamp);
    a move (a new views stamp) recomputes every quarter."""
    from services.reports import activity_queries

    computed: list[tuple[str, int]] = []

    def counting(name: str):
        real = getattr(activity_queries, name)

        async def call(session, **kw):
            stale = kw.get("checks") == ("stale_pscs",)
            computed.append(("stale" if stale else name, kw.get("qn", kw.get("first"))))
            return await real(session, **kw)
        monkeypatch.setattr(activity_queries, name, call)

    counting("activity")
    counting("quality")
    dash, q2, q3 = auth(api, Role.DASHBOARD), 8089, 8090   # 2022/23 Q2 and Q3

    async def read() -> tuple[dict, set]:
        span = {"first": "2022/23 Q2", "last": "2022/23 Q3"}
        act = (await api.get("/activity", params={**span, "level": "icb"},
                             headers=dash)).json()
        quality = (await api.get("/quality", params=span, headers=dash)).json()
        return ({(r["quarter"], r["code"]): r["observation_sets"] for r in act["rows"]},
                {(r["quarter"], i["site_id"]) for r in quality["rows"]
                 if r["check"] == "observations_below_stage4" for i in r["items"]})

    before = await read()
    assert before == ({("2022/23 Q3", "QJK"): 2, ("2022/23 Q3", "QHL"): 1},
                      {("2022/23 Q3", "1-D")})
    assert sorted(computed) == [("activity", q2), ("activity", q3), ("quality", q2),
                                ("quality", q3), ("stale", q2), ("stale", q3)]
    computed.clear()
    assert await read() == before and computed == []   # all from the cache
    await publish_and_wait(api, [observation("1-C", "p1_z", T, icb="QUY")])   # T: in Q3
    assert await read() == ({("2022/23 Q3", "QJK"): 2, ("2022/23 Q3", "QHL"): 1,
                             ("2022/23 Q3", "QUY"): 1},
                            {("2022/23 Q3", "1-C"), ("2022/23 Q3", "1-D")})
    assert sorted(computed) == [("activity", q3), ("quality", q3)]
    computed.clear()
    second = observation("1-C", "p1_z", T, icb="QUY")   # 1-C is already observed in Q3
    await publish_and_wait(api, [second])
    assert await read() == ({("2022/23 Q3", "QJK"): 2, ("2022/23 Q3", "QHL"): 1,
                             ("2022/23 Q3", "QUY"): 2},
                            {("2022/23 Q3", "1-C"), ("2022/23 Q3", "1-D")})
    assert computed == [("activity", q3)]
    computed.clear()
    await publish_and_wait(api, [withdrawal(EVENTS[10])])   # 1-D's only set in Q3
    assert await read() == ({("2022/23 Q3", "QJK"): 2, ("2022/23 Q3", "QUY"): 2},
                            {("2022/23 Q3", "1-C")})
    assert sorted(computed) == [("activity", q3), ("quality", q3)]
    computed.clear()
    await publish_and_wait(api, [observation("1-C", "p1_z", datetime(2022, 8, 1, tzinfo=UTC),
                                             icb="QUY")])
    assert (await read())[0][("2022/23 Q2", "QUY")] == 1
    assert sorted(computed) == [("activity", q2), ("quality", q2)]
    computed.clear()
    await publish_and_wait(api, [site("1-C", "QHL", revision=2)])   # a move: a new stamp
    assert (await read())[0] == {("2022/23 Q2", "QHL"): 1, ("2022/23 Q3", "QJK"): 2,
                                 ("2022/23 Q3", "QHL"): 2}
    assert sorted(computed) == [("activity", q2), ("activity", q3), ("quality", q2),
                                ("quality", q3), ("stale", q2), ("stale", q3)]


async def test_range_levels_and_csv(api):
    dash = auth(api, Role.DASHBOARD)
    r = await api.get("/adoption", params={"first": "2022/23 Q1", "last": "2022/23 Q4",
                                           "level": "psc"}, headers=dash)
    rows = r.json()["rows"]
    assert [(x["quarter"], x["code"], x["measures"]["ge3"]["numerator"]) for x in rows] == [
        ("2022/23 Q1", "SW", 1), ("2022/23 Q1", "WM", 0), ("2022/23 Q2", "SW", 2),
        ("2022/23 Q2", "WM", 0), ("2022/23 Q3", "SW", 2), ("2022/23 Q3", "WM", 0),
        ("2022/23 Q4", "SW", 2), ("2022/23 Q4", "WM", 0)]
    csv = await api.get("/adoption", params={"quarter": "2022/23 Q3", "level": "icb",
                                             "format": "csv"}, headers=dash)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("quarter,level,code,programme,tool,denominator,stage_0")
    assert lines[1].startswith("2022/23 Q3,icb,QHL,care-homes,*,1,0,0,1,0,0,0,0,0,0,1,")


async def test_transitions(api):
    r = await api.get("/transitions", params={"quarter": "2022/23 Q3"},
                      headers=auth(api, Role.ADMIN))
    [row] = r.json()["rows"]
    assert (row["up"], row["down"], row["same"]) == (1, 0, 3)
    assert row["moves"] == [{"from": 3, "to": 5, "sites": 1}]


async def test_transitions_and_quality_by_tool(api):
    """One tool: the sites whose stage in force names it (at the later quarter end for a
    move); a site never reported names none. In 2022/23 Q3: 1-A moved 3 -> 5 and 1-D stays
    at 2 with NEWS2, 1-B stays at 7 with soft signs, 1-C was never reported."""
    dash = auth(api, Role.DASHBOARD)

    async def moves(tool: str) -> tuple[int, int, int]:
        r = await api.get("/transitions", params={"quarter": "2022/23 Q3", "tool": tool},
                          headers=dash)
        assert r.status_code == 200, r.text
        [row] = r.json()["rows"]
        return row["up"], row["down"], row["same"]

    async def listed(tool: str) -> set[tuple[str, str]]:
        r = await api.get("/quality", params={"quarter": "2022/23 Q3", "tool": tool},
                          headers=dash)
        assert r.status_code == 200, r.text
        return {(x["check"], i["site_id"]) for x in r.json()["rows"] for i in x["items"]
                if "site_id" in i}

    for route in ("/transitions", "/quality"):   # 'each' splits adoption only
        r = await api.get(route, params={"quarter": "2022/23 Q3", "tool": "each"},
                          headers=dash)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("tool"), r.text
    assert await moves("*") == (1, 0, 3)
    assert await moves("NEWS2") == (1, 0, 1)
    assert await moves("Soft signs") == (0, 0, 1)
    both = {("stage5_without_observations", "1-A"), ("observations_below_stage4", "1-D")}
    assert await listed("*") == both
    assert await listed("NEWS2") == both
    assert await listed("Soft signs") == set()


async def test_activity_by_tool(api):
    """One tool (and its programme): the activity of the sites whose stage in force at the
    quarter's end names it, each row saying which. In 2022/23 Q3 1-B (soft signs) has two
    sets of one resident, two scores (one complete, high; one a claim mismatch) and a flag;
    1-D (NEWS2, QHL) one set; 1-A (NEWS2) none. Observations carry no programme, so
    ``programme`` alone is refused."""
    dash = auth(api, Role.DASHBOARD)
    q3 = {"quarter": "2022/23 Q3"}

    async def rows(headers=dash, **params) -> list[dict]:
        r = await api.get("/activity", params={**q3, **params}, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    def sets(found: list[dict]) -> dict[str, tuple]:
        return {x["code"]: (x["programme"], x["tool"], x["observation_sets"],
                            x["residents_observed"], x["flags"]) for x in found}

    assert sets(await rows(level="icb", tool="NEWS2")) == {
        "QHL": ("care-homes", "NEWS2", 1, 1, 0)}
    [soft] = await rows(tool="Soft signs")
    assert soft["code"] == "ENG" and soft["claim_mismatches"] == 1
    assert soft["complete_news2"] == {"numerator": 1, "denominator": 2, "percent": 50.0}
    assert soft["risk"] == {"low": 0, "low-medium": 0, "medium": 0, "high": 1}
    assert sets([soft]) == {"ENG": ("care-homes", "Soft signs", 2, 1, 1)}
    assert sets(await rows(level="site", tool="NEWS2")) == {
        "1-D": ("care-homes", "NEWS2", 1, 1, 0)}
    assert sets(await rows(programme="care-homes", tool="NEWS2")) == {
        "ENG": ("care-homes", "NEWS2", 1, 1, 0)}
    assert await rows(tool="RESTORE2") == []
    assert await rows(programme="other", tool="NEWS2") == []
    assert "tool" not in (await rows())[0]   # all tools: the rows as they always were
    csv = await api.get("/activity", params={**q3, "tool": "Soft signs", "format": "csv"},
                        headers=dash)
    assert csv.text.splitlines()[0].startswith("quarter,level,code,programme,tool,"
                                               "observation_sets,residents_observed,")
    assert csv.text.splitlines()[1].startswith("2022/23 Q3,national,ENG,care-homes,Soft signs,"
                                               "2,1,")
    for params, field in (({"programme": "care-homes"}, "programme"), ({"tool": "each"}, "tool")):
        r = await api.get("/activity", params={**q3, **params}, headers=dash)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith(field), r.text
    sw = auth(api, Role.PSC, pscs=["SW"])   # QHL is the Midlands': SW sees national totals
    assert await rows(sw, level="icb", tool="NEWS2") == []
    assert sets(await rows(sw, tool="NEWS2")) == {"ENG": ("care-homes", "NEWS2", 1, 1, 0)}
    # 1-B switches to NEWS2 in mid-October: the next read (cached per views stamp) counts
    # its Q3 sets under the tool in force at Q3's end
    await publish_and_wait(api, [stage("1-B", 7, date(2022, 10, 15))])
    assert sets(await rows(tool="NEWS2")) == {"ENG": ("care-homes", "NEWS2", 3, 2, 1)}
    assert await rows(tool="Soft signs") == []


async def test_activity_and_quality(api):
    dash = auth(api, Role.DASHBOARD)
    r = await api.get("/activity", params={"quarter": "2022/23 Q3", "level": "site"},
                      headers=dash)
    rows = {x["code"]: x for x in r.json()["rows"]}
    b = rows["1-B"]
    assert (b["observation_sets"], b["residents_observed"], b["flags"],
            b["claim_mismatches"]) == (2, 1, 1, 1)
    assert b["complete_news2"] == {"numerator": 1, "denominator": 2, "percent": 50.0}
    assert b["risk"] == {"low": 0, "low-medium": 0, "medium": 0, "high": 1}
    q = await api.get("/quality", params={"quarter": "2022/23 Q3"}, headers=dash)
    one = {"quarter": "2022/23 Q3", "programme": "care-homes"}
    assert q.json()["rows"] == [   # every check, listed or not, with its count
        {**one, "check": "stage5_without_observations", "count": 1,
         "items": [{"site_id": "1-A", "stage": 5, "icb_code": "QJK", "psc_code": "SW"}],
         "next_offset": None},
        {**one, "check": "observations_below_stage4", "count": 1,
         "items": [{"site_id": "1-D", "stage": 2, "icb_code": "QHL", "psc_code": "WM"}],
         "next_offset": None},
        {**one, "check": "stale_pscs", "count": 0, "items": [], "next_offset": None},
    ]   # no stale PSC: the returns are of July 2023
    csv = await api.get("/quality", params={"quarter": "2022/23 Q3", "format": "csv"},
                        headers=dash)
    assert csv.text.splitlines() == [   # a line per item
        "quarter,programme,check,site_id,stage,icb_code,psc_code",
        "2022/23 Q3,care-homes,stage5_without_observations,1-A,5,QJK,SW",
        "2022/23 Q3,care-homes,observations_below_stage4,1-D,2,QHL,WM"]


async def test_quality_by_area(api):
    """Quality for one region, PSC or ICB lists only that area's sites, by the register's
    codes (its stale PSCs: test_activity_areas); below national a code is required, and a
    PSC token reads its own areas only."""
    dash = auth(api, Role.DASHBOARD)

    async def checks(quarter: str, headers=dash, **area) -> set[tuple[str, str]]:
        r = await api.get("/quality", params={"quarter": quarter, **area}, headers=headers)
        assert r.status_code == 200, r.text
        return {(x["check"], i.get("site_id") or i["psc_code"]) for x in r.json()["rows"]
                for i in x["items"]}

    both = {("stage5_without_observations", "1-A"), ("observations_below_stage4", "1-D")}
    assert await checks("2022/23 Q3") == both
    assert await checks("2022/23 Q3", level="psc", code="SW") == {
        ("stage5_without_observations", "1-A")}
    assert await checks("2022/23 Q3", level="icb", code="QHL") == {
        ("observations_below_stage4", "1-D")}
    assert await checks("2022/23 Q3", level="region", code="Midlands") == {
        ("observations_below_stage4", "1-D")}
    assert await checks("2022/23 Q3", level="icb", code="QUY") == set()   # no stage, no sets
    missing = await api.get("/quality", params={"level": "psc"}, headers=dash)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "code"
    sw = auth(api, Role.PSC, pscs=["SW"])
    assert await checks("2022/23 Q3", sw, level="icb", code="QJK") == {
        ("stage5_without_observations", "1-A")}
    for area in ({"level": "psc", "code": "WM"}, {"level": "region", "code": "Midlands"}):
        r = await api.get("/quality", params={"quarter": "2022/23 Q3", **area}, headers=sw)
        assert r.status_code == 403, area


async def test_quality_lists_are_paged_in_json_and_whole_in_csv(api):
    """JSON: a page of each list in site-id order, the whole list's count beside it and the
    offset of the next page; ``check`` keeps one list; a PSC token's lists and counts are of
    its own sites. CSV: every item, and a page asked of it is refused."""
    await publish_and_wait(api, [site("1-E"), site("1-F"), site("1-G", "QHL"),
                                 stage("1-E", 6, date(2022, 10, 1)),
                                 stage("1-F", 5, date(2022, 9, 1)),
                                 stage("1-G", 7, date(2022, 10, 1), icb="QHL")])
    dash, q3 = auth(api, Role.DASHBOARD), {"quarter": "2022/23 Q3"}

    async def page(headers=dash, **params) -> tuple[int, list[str], int | None]:
        r = await api.get("/quality", headers=headers,
                          params={**q3, "check": "stage5_without_observations", **params})
        assert r.status_code == 200, r.text
        [row] = r.json()["rows"]
        return row["count"], [i["site_id"] for i in row["items"]], row["next_offset"]

    assert await page(limit=3) == (4, ["1-A", "1-E", "1-F"], 3)
    assert await page(limit=3, offset=3) == (4, ["1-G"], None)
    assert await page(limit=2, offset=2) == (4, ["1-F", "1-G"], None)
    assert await page(limit=2, offset=4) == (4, [], None)
    assert await page(limit=2, offset=9) == (4, [], None)
    assert await page() == (4, ["1-A", "1-E", "1-F", "1-G"], None)   # 100 by default
    sw = auth(api, Role.PSC, pscs=["SW"])   # 1-G is in QHL, West Midlands'
    assert await page(sw, limit=2) == (3, ["1-A", "1-E"], 2)
    assert await page(sw, level="psc", code="SW", limit=2, offset=2) == (3, ["1-F"], None)

    every = await api.get("/quality", params={**q3, "limit": 1}, headers=dash)
    assert [(x["check"], x["count"], len(x["items"]), x["next_offset"])
            for x in every.json()["rows"]] == [
        ("stage5_without_observations", 4, 1, 1), ("observations_below_stage4", 1, 1, None),
        ("stale_pscs", 0, 0, None)]
    csv = await api.get("/quality", params={**q3, "format": "csv"}, headers=dash)
    assert [line.split(",")[2:4] for line in csv.text.splitlines()[1:]] == [
        ["stage5_without_observations", s] for s in ("1-A", "1-E", "1-F", "1-G")] + [
        ["observations_below_stage4", "1-D"]]
    for bad, field in (({"format": "csv", "limit": 2}, "limit"),
                       ({"format": "csv", "offset": 0}, "offset"),
                       ({"limit": 0}, "query.limit"), ({"limit": 1001}, "query.limit"),
                       ({"offset": -1}, "query.offset"), ({"check": "stale"}, "query.check")):
        r = await api.get("/quality", params={**q3, **bad}, headers=dash)
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == [field], r.json()


async def test_stale_pscs_follow_the_register_and_returns(api):
    """Stale PSCs are cached under the views stamp, not the data-quality version: a new
    PSC's first site lists it at once, its first return takes it off, and readings in
    between leave the answer as it was."""
    dash, q = auth(api, Role.DASHBOARD), {"quarter": "2023/24 Q2", "check": "stale_pscs"}

    async def stale() -> list[tuple[str, str | None]]:
        r = await api.get("/quality", params=q, headers=dash)
        assert r.status_code == 200, r.text
        [row] = r.json()["rows"]
        return [(i["psc_code"], i["latest_return"]) for i in row["items"]]

    assert await stale() == []   # both PSCs returned on 1 July 2023
    await publish_and_wait(api, [site("1-N", "QOX")])   # WX's first site
    assert await stale() == [("WX", None)]
    await publish_and_wait(api, [observation("1-N", "p1_n", datetime(2023, 7, 5, tzinfo=UTC),
                                             icb="QOX")])
    assert await stale() == [("WX", None)]
    await publish_and_wait(api, [stage("1-N", 2, date(2023, 7, 1), icb="QOX",
                                       reported=datetime(2023, 7, 6, tzinfo=UTC))])
    assert await stale() == []


async def test_withdrawn_sets_leave_the_activity_json_csv_and_quality(api):
    """1-D's only set and one of 1-B's two (the high, flagged score) are withdrawn: 1-D
    drops out of the activity rows and of "observations below stage 4"; 1-B keeps its
    resident (one set of theirs stands) and the other score's figures."""
    withdrawals = [withdrawal(EVENTS[10]), withdrawal(EVENTS[8]),
                   score_withdrawal(EVENTS[11], EVENTS[13])]
    await publish_and_wait(api, withdrawals)
    dash = auth(api, Role.DASHBOARD)
    params = {"quarter": "2022/23 Q3", "level": "site"}
    rows = {x["code"]: x for x in (await api.get("/activity", params=params,
                                                 headers=dash)).json()["rows"]}
    assert set(rows) == {"1-B"}
    b = rows["1-B"]
    assert (b["observation_sets"], b["residents_observed"], b["flags"], b["red_scores"],
            b["claim_mismatches"]) == (1, 1, 0, 0, 1)
    assert b["complete_news2"] == {"numerator": 0, "denominator": 1, "percent": 0.0}
    assert b["risk"] == {"low": 0, "low-medium": 0, "medium": 0, "high": 0}
    csv = (await api.get("/activity", params={**params, "format": "csv"}, headers=dash)).text
    header, *lines = csv.splitlines()
    assert [dict(zip(header.split(","), line.split(","), strict=True))["residents_observed"]
            for line in lines] == ["1"]
    q = await api.get("/quality", params={"quarter": "2022/23 Q3"}, headers=dash)
    assert {x["check"]: x["count"] for x in q.json()["rows"]}["observations_below_stage4"] == 0


async def test_psc_scope(sqlite_api):
    api = sqlite_api
    sw = auth(api, Role.PSC, pscs=["SW"])
    ok = await api.get("/adoption", params={"quarter": "2022/23 Q3", "level": "icb"},
                       headers=sw)
    assert [x["code"] for x in ok.json()["rows"]] == ["QJK", "QUY"]
    assert (await api.get("/adoption", params={"level": "national"}, headers=sw)
            ).status_code == 200
    for params in ({"level": "psc", "code": "WM"}, {"level": "icb", "code": "QHL"},
                   {"level": "region"}):
        r = await api.get("/adoption", params=params, headers=sw)
        assert r.status_code == 403, params
        assert r.headers["content-type"] == "application/problem+json"
    assert (await api.get("/adoption")).status_code == 401
    assert (await api.get("/adoption", headers=auth(api, Role.PLATFORM))).status_code == 403


INVALID = [
    ({"quarter": "2022/24 Q1"}, "quarter"),
    ({"quarter": "2022-23 Q1"}, "quarter"),
    ({"quarter": "2019/20 Q1"}, "first"),
    ({"quarter": "2030/31 Q1"}, "first"),
    ({"first": "2022/23 Q4", "last": "2022/23 Q1"}, "last"),
    ({"quarter": "2022/23 Q1", "first": "2022/23 Q1"}, "quarter"),
    ({"tool": "a\x00b"}, "tool"),
    ({"level": "galaxy"}, "level"),
    ({"surprise": "1"}, "surprise"),
]


async def test_invalid_queries_are_422_problems(sqlite_api):
    for params, field in INVALID:
        r = await sqlite_api.get("/adoption", params=params,
                                 headers=auth(sqlite_api, Role.DASHBOARD))
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert any(field in e["field"] for e in r.json()["errors"]), r.json()


async def test_charts_svg_and_png(sqlite_api):
    dash = auth(sqlite_api, Role.DASHBOARD)
    svg = await sqlite_api.get("/charts/stages.svg", params={
        "quarter": "2022/23 Q3", "programme": "care-homes"}, headers=dash)
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    assert b"SW (n=3)" in svg.content or b"SW" in svg.content
    png = await sqlite_api.get("/charts/measures.png", params={
        "first": "2022/23 Q1", "last": "2023/24 Q2", "programme": "care-homes"}, headers=dash)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    missing = await sqlite_api.get("/charts/measures.svg", params={
        "level": "psc", "programme": "care-homes"}, headers=dash)
    assert missing.status_code == 422
    other = await sqlite_api.get("/charts/measures.svg", params={
        "level": "psc", "code": "WM", "programme": "care-homes"},
        headers=auth(sqlite_api, Role.PSC, pscs=["SW"]))
    assert other.status_code == 403
