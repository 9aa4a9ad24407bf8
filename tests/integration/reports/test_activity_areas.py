"""Activity counts under the register's area codes, and follows a site that moves.

Events go through the live consumer (SQLite and PostgreSQL); every expected figure is
written out by hand. Columns of ``view``: observation sets, residents observed, scored,
complete, low, low-medium, medium, high, red scores, flags, claim mismatches.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text

from services.reports import activity, activity_queries, consumers, rebuild
from services.reports.activity import ACT, AREA
from services.reports.facts import Horizon
from shared.events import parse
from shared.migrations import upgrade
from tests.integration.reports.support import (
    FIRST,
    Q3,
    T1,
    T2,
    deliver,
    migrated_to,
    observation,
    reports_runtime,
    score,
    site,
    stage,
    updated,
    view,
)

pytestmark = pytest.mark.integration
TWO_SETS = (2, 2, 1, 1, 0, 1, 0, 0, 0, 0, 0)   # one scored low-medium
ONE_SET = (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)


async def test_activity_rolls_up_by_the_registers_area_codes(rt):
    """Events of one site saying two ICBs (it moved; ingest's copy was stale) count under
    the ICB and PSC the register gives it (the property test varies the order)."""
    await deliver(rt, [site("1-A", "QJK"), observation("1-A", "p1_x", T1, icb="QHL"),
                       observation("1-A", "p1_y", T2, icb="QJK")])
    assert await view(rt, "icb") == {"QJK": (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    assert await view(rt, "psc") == {"SW": (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    async with rt.db.session() as s:
        quality = await activity_queries.quality(s, programme="care-homes", qn=Q3,
                                                 keep_psc=None)
    assert quality["observations_below_stage4"] == (1, [
        {"site_id": "1-A", "stage": 0, "icb_code": "QJK", "psc_code": "SW"}])


async def test_a_site_that_moves_takes_its_counts_to_its_new_icb_and_psc(rt):
    recorded = observation("1-A", "p1_x", T1)
    await deliver(rt, [site("1-A", "QJK"), site("1-B", "QUY"), recorded,
                       score("1-A", "p1_x", T1, total=3, risk="low-medium", of=recorded),
                       observation("1-A", "p1_y", T2), observation("1-B", "p1_z", T1)])
    assert await view(rt, "icb") == {"QJK": TWO_SETS, "QUY": ONE_SET}
    assert await view(rt, "psc") == {"SW": (3, 3, 1, 1, 0, 1, 0, 0, 0, 0, 0)}
    await deliver(rt, [updated("1-A", "QHL", 2)])   # QHL is in PSC WM
    assert await view(rt, "icb") == {"QHL": TWO_SETS, "QUY": ONE_SET}
    assert await view(rt, "psc") == {"SW": ONE_SET, "WM": TWO_SETS}
    assert await view(rt, "national") == {"ENG": (3, 3, 1, 1, 0, 1, 0, 0, 0, 0, 0)}
    await deliver(rt, [updated("1-A", "QJK", 1)])   # an older revision: nothing moves
    assert await view(rt, "icb") == {"QHL": TWO_SETS, "QUY": ONE_SET}


async def test_activity_before_its_site_is_registered_moves_when_it_is(rt):
    await deliver(rt, [observation("1-C", "p1_x", T1, icb="QHL")])
    assert await view(rt, "icb") == {"QHL": ONE_SET}   # the event's codes until then
    await deliver(rt, [site("1-C", "QUY")])
    assert await view(rt, "icb") == {"QUY": ONE_SET}
    assert await view(rt, "psc") == {"SW": ONE_SET}


async def test_a_rebuild_from_history_derives_the_same_roll_ups(rt):
    """``derive`` (what a rebuild runs) makes the roll-ups again from the site rows."""
    await deliver(rt, [site("1-A", "QJK"), observation("1-A", "p1_x", T1, icb="QHL"),
                       observation("1-B", "p1_y", T2, icb="QUY"), updated("1-A", "QHL", 2)])
    before = {level: await view(rt, level) for level in ("national", "icb", "psc", "site")}
    async with rt.db.transaction() as s:
        await s.execute(AREA.delete())
        await s.execute(ACT.update().values(residents=7))
        await s.execute(ACT.update().values(icb_code="QJK").where(ACT.c.site_id == "1-A"))
    assert await view(rt, "icb") == {}
    await rebuild.rebuild_from_history(rt.db, Horizon.of(FIRST))
    assert {level: await view(rt, level) for level in before} == before == {
        "national": {"ENG": (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
        "icb": {"QHL": ONE_SET, "QUY": ONE_SET}, "psc": {"WM": ONE_SET, "SW": ONE_SET},
        "site": {"1-A": ONE_SET, "1-B": ONE_SET}}


async def test_a_move_waits_for_activity_being_added_and_then_takes_it(pg_url, tmp_path):
    """PostgreSQL, two workers at once: while one adds a site's first row of a quarter
    (under the codes it read from the register) and has not committed, another applying
    the site's move waits for it (lock ``activity.AREAS``), then moves that row too.
    Without the wait the move would not see the row, which would stay under the old ICB."""
    rt = reports_runtime(tmp_path, pg_url)
    await upgrade(rt.db, rt.migrations)
    try:
        await deliver(rt, [site("1-A", "QJK")])
        adding = rt.db.transaction()
        session = await adding.__aenter__()
        try:
            await activity.add_many(session, [parse(observation("1-A", "p1_x", T1))])
            move = updated("1-A", "QHL", 2)
            handler = consumers.batch_handler(Horizon.of(FIRST))

            async def apply_move() -> None:
                async with rt.db.transaction() as other:
                    await handler(other, [(move, parse(move))])

            moving = asyncio.ensure_future(apply_move())
            await asyncio.sleep(0.5)
            assert not moving.done()   # waiting for the lock the adder holds
        except BaseException:
            await adding.__aexit__(None, None, None)
            raise
        await adding.__aexit__(None, None, None)   # commits the added row
        await asyncio.wait_for(moving, 10)
        assert await view(rt, "icb") == {"QHL": ONE_SET}
        async with rt.db.session() as s:
            assert (await s.execute(select(ACT.c.icb_code))).scalars().all() == ["QHL"]
    finally:
        await rt.db.dispose()


async def test_an_add_waiting_for_a_register_change_holds_nothing_it_needs(pg_url, tmp_path):
    """PostgreSQL: a register change holds ``activity.AREAS`` exclusively and then adds its
    own batch's activity; an add arriving meanwhile waits for the lock before it locks any
    row, so the change's add (the quarter's rows and version) goes through and both commit.
    An add that locked its quarter's version row before waiting deadlocked with it."""
    rt = reports_runtime(tmp_path, pg_url)
    await upgrade(rt.db, rt.migrations)
    try:
        await deliver(rt, [site("1-A", "QJK"), site("1-B", "QJK")])
        changing = rt.db.transaction()
        session = await changing.__aenter__()
        try:
            await activity.lock_areas(session)

            async def add() -> None:
                async with rt.db.transaction() as other:
                    await activity.add_many(other, [parse(observation("1-B", "p1_y", T1))])

            adding = asyncio.ensure_future(add())
            await asyncio.sleep(0.5)
            assert not adding.done()   # waiting for the register change
            await activity.add_many(session, [parse(observation("1-A", "p1_x", T2))])
        except BaseException:
            await changing.__aexit__(None, None, None)
            raise
        await changing.__aexit__(None, None, None)
        await asyncio.wait_for(adding, 10)
        assert await view(rt, "icb") == {"QJK": (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    finally:
        await rt.db.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_the_migration_carries_existing_activity_over(tmp_path, request, dialect):
    """0011 on a database at 0010: each row takes the register's codes (the site's events
    said QHL; the register says QJK) and counts its residents with a standing set, and the
    roll-ups are summed."""
    runtime = await migrated_to(tmp_path, request, dialect, "0010")
    async with runtime.db.transaction() as s:
        await s.execute(text(
            "INSERT INTO reports_site (site_id, icb_code, psc_code, region, revision) "
            "VALUES ('1-A', 'QJK', 'SW', 'South West', 1)"))
        await s.execute(text(
            "INSERT INTO reports_activity (site_id, qn, icb_code, psc_code, observation_sets, "
            "flags) VALUES ('1-A', 8090, 'QHL', 'WM', 3, 1), ('1-B', 8090, 'QUY', 'SW', 1, 0)"))
        await s.execute(text(
            "INSERT INTO reports_activity_resident VALUES ('1-A', 8090, 'p1_x', 2), "
            "('1-A', 8090, 'p1_y', 1), ('1-A', 8090, 'p1_z', 0), ('1-B', 8090, 'p1_w', 1)"))
    await upgrade(runtime.db, runtime.migrations)
    #                  obs, residents, scored, complete, bands..., red, flags, mismatches
    assert await view(runtime, "site") == {"1-A": (3, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0),
                                           "1-B": (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    assert await view(runtime, "icb") == {"QJK": (3, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0),
                                          "QUY": (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    assert await view(runtime, "psc") == {"SW": (4, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0)}
    assert await view(runtime, "national") == {"ENG": (4, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0)}
    await runtime.db.dispose()


async def test_stale_pscs_use_each_psc_newest_return_whatever_the_arrival_order(rt):
    """Data quality's stale returns read each PSC's newest ``reported_at``, kept as records
    arrive (an older return arriving later does not lower it) and derived again by a
    rebuild."""
    from services.reports.domain.stages import ordinal
    from shared.quarters import Quarter

    def reported(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(tzinfo=UTC)

    await deliver(rt, [
        site("1-A", "QJK"), site("1-D", "QHL"),
        stage("1-A", 3, date(2022, 12, 1), reported=reported("2023-01-10")),
        stage("1-A", 2, date(2022, 7, 1), reported=reported("2022-08-01")),   # older, later
        stage("1-D", 1, date(2022, 8, 1), icb="QHL", reported=reported("2022-09-01"))])

    async def stale(quarter: str, area: tuple[str, str] | None = None
                    ) -> list[tuple[str, str]]:
        async with rt.db.session() as s:
            found = await activity_queries.quality(
                s, programme="care-homes", qn=ordinal(Quarter.parse(quarter)), keep_psc=None,
                area=area)
        return [(r["psc_code"], str(r["latest_return"])) for r in found["stale_pscs"][1]]

    assert await stale("2022/23 Q4") == [("WM", "2022-09-01")]   # SW's newest is in Q4
    assert await stale("2023/24 Q1") == [("SW", "2023-01-10"), ("WM", "2022-09-01")]
    # One area's: the PSCs of its sites in the register copy.
    assert await stale("2023/24 Q1", ("psc", "WM")) == [("WM", "2022-09-01")]
    assert await stale("2023/24 Q1", ("icb", "QJK")) == [("SW", "2023-01-10")]
    assert await stale("2023/24 Q1", ("region", "Midlands")) == [("WM", "2022-09-01")]
    assert await stale("2023/24 Q1", ("icb", "QUY")) == []   # no site registered there
    await rebuild.rebuild_from_history(rt.db, Horizon.of(FIRST))
    assert await stale("2022/23 Q4") == [("WM", "2022-09-01")]
