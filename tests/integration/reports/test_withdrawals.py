"""Withdrawn observation sets take back exactly what they counted (SQLite and PostgreSQL).

Events go through the live consumer; every expected figure is written out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from services.reports.activity import ACT, RES
from shared.migrations import upgrade
from tests.integration.reports.support import (
    Q3,
    Q4,
    T1,
    T2,
    deliver,
    downgrade,
    flag,
    migrated_to,
    observation,
    score,
    score_withdrawal,
    view,
    withdrawal,
)

pytestmark = pytest.mark.integration
T3 = datetime(2023, 2, 1, 9, tzinfo=UTC)     # 2022/23 Q4
NOTHING = (0,) * 11


async def stored(rt) -> tuple[list, list]:
    async with rt.db.session() as s:
        act = sorted(tuple(r) for r in (await s.execute(select(ACT))).all())
        res = sorted(tuple(r) for r in (await s.execute(select(RES))).all())
    return act, res


async def test_a_scored_flagged_set_withdrawn_leaves_every_counter_as_it_was(rt):
    standing = observation("1-A", "p1_x", T1)
    await deliver(rt, [standing, score("1-A", "p1_x", T1, total=1, risk="low", of=standing)])
    before = {"1-A": (1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0)}
    assert await view(rt) == before
    wrong = observation("1-A", "p1_y", T2)
    scored = score("1-A", "p1_y", T2, total=5, risk="medium", red=True, mismatch=True, of=wrong)
    flagged = flag("1-A", "p1_y", T2, of=wrong)
    await deliver(rt, [wrong, scored, flagged])
    assert await view(rt) == {"1-A": (2, 2, 2, 2, 1, 0, 1, 0, 1, 1, 1)}
    await deliver(rt, [withdrawal(wrong), score_withdrawal(scored, flagged)])
    assert await view(rt) == before
    assert await view(rt, "national") == {"ENG": (1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0)}


async def test_a_site_whose_only_set_is_withdrawn_shows_nothing(rt):
    wrong = observation("1-D", "p1_z", T1, icb="QHL")
    scored = score("1-D", "p1_z", T1, total=7, risk="high", icb="QHL", of=wrong)
    flagged = flag("1-D", "p1_z", T1, icb="QHL", of=wrong)
    await deliver(rt, [wrong, scored, flagged])
    assert await view(rt, "icb") == {"QHL": (1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0)}
    await deliver(rt, [score_withdrawal(scored, flagged), withdrawal(wrong)])
    assert await view(rt, "icb") == {} and await view(rt, "national") == {}
    act, res = await stored(rt)   # the rows stay, at 0
    assert act == [("1-D", Q3, "QHL", "WM", *(0,) * 11)]
    assert res == [("1-D", Q3, "p1_z", 0)]


async def test_a_resident_with_two_sets_one_withdrawn_is_still_observed(rt):
    first, second = observation("1-A", "p1_x", T1), observation("1-A", "p1_x", T2)
    later = observation("1-A", "p1_x", T3)   # another quarter: not touched
    await deliver(rt, [first, second, later])
    assert await view(rt) == {"1-A": (2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    await deliver(rt, [withdrawal(first)])
    assert await view(rt) == {"1-A": (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    await deliver(rt, [withdrawal(second)])
    assert await view(rt) == {}
    assert await view(rt, qn=Q4) == {"1-A": (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    assert (await stored(rt))[1] == [("1-A", Q3, "p1_x", 0), ("1-A", Q4, "p1_x", 1)]


async def test_an_amendment_moves_the_band_counts(rt):
    old = observation("1-A", "p1_x", T1)
    old_score = score("1-A", "p1_x", T1, total=2, risk="low", of=old)
    await deliver(rt, [old, old_score])
    assert await view(rt) == {"1-A": (1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0)}
    new = observation("1-A", "p1_x", T1)   # ingest records the amended set, withdraws the old
    new_score = score("1-A", "p1_x", T1, total=8, risk="high", red=True, of=new)
    await deliver(rt, [new, withdrawal(old, reason="amended", replaced_by=new), new_score,
                       score_withdrawal(old_score, reason="amended", replaced_by=new)])
    assert await view(rt) == {"1-A": (1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0)}


async def test_withdrawing_a_rejected_score_changes_nothing(rt):
    recorded = observation("1-A", "p1_x", T1)
    rejected = score("1-A", "p1_x", T1, total=None, risk=None, rejected=True, of=recorded)
    await deliver(rt, [recorded, rejected])
    want = {"1-A": (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    assert await view(rt) == want
    before = await stored(rt)
    await deliver(rt, [score_withdrawal(rejected)])
    assert await view(rt) == want and await stored(rt) == before


async def test_a_withdrawal_applied_first_goes_below_zero_and_ends_at_the_same_counts(rt):
    """A rebuild applies activity by event id, so a withdrawal may come first: nothing
    clamps the counters, which end where the publish order ends."""
    recorded = observation("1-A", "p1_x", T1)
    scored = score("1-A", "p1_x", T1, total=5, risk="medium", red=True, mismatch=True,
                   of=recorded)
    flagged = flag("1-A", "p1_x", T1, of=recorded)
    await deliver(rt, [score_withdrawal(scored, flagged), withdrawal(recorded)])
    #  site, qn, icb, psc, obs, scored, complete, low, low-med, med, high, red, flags, mismatch,
    #  residents (-1 standing sets: not observed)
    assert await stored(rt) == ([("1-A", Q3, "QJK", "SW", -1, -1, -1, 0, 0, -1, 0, -1, -1, -1, 0)],
                                [("1-A", Q3, "p1_x", -1)])
    assert await view(rt, "national") == {"ENG": (-1, 0, -1, -1, 0, 0, -1, 0, -1, -1, -1)}
    await deliver(rt, [flagged, recorded, scored])
    assert await stored(rt) == ([("1-A", Q3, "QJK", "SW", *(0,) * 11)],
                                [("1-A", Q3, "p1_x", 0)])
    assert await view(rt) == {}



@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_the_migration_gives_existing_residents_one_set_and_back(tmp_path, request,
                                                                        dialect):
    """0010 on a database with residents observed: each row gets 1 standing set (a rebuild
    restores exact counts); the downgrade keeps only residents still observed."""
    runtime = await migrated_to(tmp_path, request, dialect, "0009")
    async with runtime.db.transaction() as s:
        await s.execute(text("INSERT INTO reports_activity (site_id, qn, icb_code, psc_code, "
                             "observation_sets) VALUES ('1-A', 8090, 'QJK', 'SW', 2)"))
        await s.execute(text("INSERT INTO reports_activity_resident VALUES "
                             "('1-A', 8090, 'p1_x'), ('1-A', 8090, 'p1_y')"))
    await upgrade(runtime.db, runtime.migrations)
    assert (await stored(runtime))[1] == [("1-A", Q3, "p1_x", 1), ("1-A", Q3, "p1_y", 1)]
    await deliver(runtime, [withdrawal(observation("1-A", "p1_y", T1))])
    assert (await view(runtime))["1-A"][:2] == (1, 1)   # 1 set, p1_x only
    await downgrade(runtime, "0009")
    async with runtime.db.session() as s:
        left = (await s.execute(text("SELECT * FROM reports_activity_resident"))).all()
    assert [tuple(r) for r in left] == [("1-A", Q3, "p1_x")]
    await runtime.db.dispose()
