"""Property: views maintained incrementally equal a rebuild from the same events.

Random histories of registrations, moves, openings, closures and stage returns (ties on
reported_at, future dates, unregistered sites, late corrections) are delivered shuffled, with
duplicates, while the clock crosses a quarter boundary. The incremental database must hold the
same facts, adoption rows and transitions as a fresh database that replays the distinct events
in canonical order and derives everything at once - and both must equal the facts computed in
plain Python from the final register and history.

The same for activity: random observation sets, scores and flags, some sets withdrawn
(``ObservationSetWithdrawn`` + ``ScoreWithdrawn``), delivered shuffled with duplicates but in
publish order within each partition (topic and resident); the incremental activity rows and
query results must equal a rebuild's (which applies activity by event id, so withdrawals
often come first), and the query results must equal counts of the standing sets in plain
Python.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, literal, select

from services.reports import activity, activity_queries, queries, rebuild, upkeep
from services.reports.domain.adoption import NATIONAL, Ambitions
from services.reports.domain.counts import LEVEL_COLUMNS
from services.reports.domain.stages import StagePoint, ordinal, quarter_facts
from services.reports.facts import COUNT, FACT, LATEST, Horizon
from shared.dialect import aware
from shared.events import Envelope
from shared.migrations import upgrade
from shared.quarters import Quarter
from tests.integration.reports import support
from tests.integration.reports.support import AREAS, FIRST, site, stage, updated

pytestmark = pytest.mark.integration
SITES = ("1-1", "1-2", "1-3", "1-4")
BEFORE, AFTER = datetime(2023, 6, 20, tzinfo=UTC), support.CLOCK   # Q1 -> Q2 of 2023/24
DAYS = st.dates(date(2021, 10, 1), date(2023, 11, 30))
REPORTED = st.sampled_from([datetime(2023, m, 1, tzinfo=UTC) for m in (1, 4, 7)])


@st.composite
def histories(draw) -> list[Envelope]:
    events = []
    for site_id in draw(st.lists(st.sampled_from(SITES), unique=True, min_size=1)):
        icb = draw(st.sampled_from(sorted(AREAS)))
        opened = draw(st.none() | DAYS)
        events.append(site(site_id, icb, 1, opened=opened))
        if draw(st.booleans()):
            events.append(updated(site_id, draw(st.sampled_from(sorted(AREAS))), 2,
                                  opened=opened))
        if draw(st.booleans()):
            events.append(site(site_id, icb, 3, opened=opened, closed=draw(DAYS)))
    for _ in range(draw(st.integers(0, 14))):
        events.append(stage(draw(st.sampled_from(SITES + ("1-9",))), draw(st.integers(0, 7)),
                            draw(DAYS), tool=draw(st.sampled_from([None, "NEWS2", "Soft"])),
                            reported=draw(REPORTED),
                            programme=draw(st.sampled_from(["ch", "mh"]))))
    return events


def deliveries(events: list[Envelope], rnd: random.Random) -> list[Envelope]:
    out = events + [rnd.choice(events) for _ in range(len(events) // 3)] if events else []
    rnd.shuffle(out)
    return out


class Clock:
    def __init__(self) -> None:
        self.now = BEFORE

    def __call__(self) -> datetime:
        return self.now


async def incremental(url: str, tmp: Path, delivered: list[Envelope], batch: int):
    clock = Clock()
    rt = support.reports_runtime(tmp, url)
    rt.consumers.clear()
    from services.reports import consumers

    consumers.add_to(rt, Horizon.of(FIRST, clock))
    half = len(delivered) // 2
    await support.deliver(rt, delivered[:half], batch)
    clock.now = AFTER
    await support.deliver(rt, delivered[half:], batch)
    if not delivered[half:]:   # nothing after the clock moved: no event extended the horizon
        async with rt.db.transaction() as s:
            await activity.lock_areas(s)
            upkeep.tick(s, Horizon.of(FIRST, clock))
            await upkeep.flush(s)
    return rt


async def rebuilt(url: str, tmp: Path, events: list[Envelope]):
    rt = support.reports_runtime(tmp, url)
    horizon = Horizon.of(FIRST, lambda: AFTER)
    async with rt.db.transaction() as s:
        await rebuild.replay(s, rebuild.canonical(events), horizon)
        await rebuild.derive_all(s, horizon)
    return rt


async def snapshot(rt) -> dict:
    first, last = ordinal(Quarter.parse(FIRST)), ordinal(Quarter.of_instant(AFTER))
    out: dict = {}
    async with rt.db.session() as s:
        out["facts"] = sorted(tuple(r) for r in (await s.execute(select(FACT))).all())
        out["latest_returns"] = sorted((p, c, aware(at)) for p, c, at in (  # SQLite: naive
            await s.execute(select(LATEST))).all())
        # incremental counters may keep rows that netted to 0; a rebuild recounts from facts
        out["counts"] = sorted(tuple(r) for r in (await s.execute(
            select(COUNT).where(COUNT.c.sites != 0))).all())
        out["grouped"] = sorted([tuple(r) for level, column in LEVEL_COLUMNS
                                 for r in (await s.execute(group_by(level, column))).all()])
        for programme in ("ch", "mh"):
            for level in ("national", "icb"):
                area = queries.Area(level)
                out[programme, level] = await queries.adoption(
                    s, area=area, programme=programme, first=first, last=last,
                    tool=queries.EACH_TOOL, targets=Ambitions())
                out[programme, level, "t"] = await queries.transitions(
                    s, area=area, programme=programme, qn=last)
    return out


def group_by(level: str, column: str | None):  # noqa: ANN201 - a Select
    """The counters as a GROUP BY of the facts at one level (what they must always equal)."""
    code = literal(NATIONAL) if column is None else FACT.c[column]
    tool = func.coalesce(FACT.c.tool, "")
    return (select(FACT.c.programme, FACT.c.qn, literal(level), code, tool, FACT.c.stage,
                   func.count())
            .group_by(FACT.c.programme, FACT.c.qn, code, tool, FACT.c.stage))


def oracle(events: list[Envelope]) -> list[tuple]:
    """Facts straight from the domain over the final register and the set of returns."""
    register = {}
    for e in sorted(events, key=lambda e: e.data.get("revision", 0)):
        if e.type != "StageChanged":
            register[e.data["site_id"]] = e.data
    series = defaultdict(dict)
    for e in events:
        if e.type == "StageChanged":
            d = e.data
            series[d["site_id"], d["programme"]][str(e.id)] = StagePoint(
                date.fromisoformat(d["applies_from"]), datetime.fromisoformat(d["reported_at"]),
                d["to_tool"], d["to_stage"], str(e.id))
    first, last = ordinal(Quarter.parse(FIRST)), ordinal(Quarter.of_instant(AFTER))
    out = []
    for (site_id, programme), points in series.items():
        if site_id not in register:
            continue
        r = register[site_id]
        opened = r["opened_on"] and date.fromisoformat(r["opened_on"])
        closed = r["closed_on"] and date.fromisoformat(r["closed_on"])
        for f in quarter_facts(list(points.values()), opened, closed, first, last):
            out.append((site_id, programme, f.qn, f.tool, f.stage, r["icb_code"],
                        r["psc_code"], r["region"]))
    return sorted(out)


async def both(make_url, events: list[Envelope], delivered: list[Envelope], batch: int,
               snap) -> tuple[dict, dict]:  # noqa: ANN001
    """``snap`` of the database kept incrementally from ``delivered``, ``batch`` messages a
    transaction, and of one rebuilt from ``events``."""
    with tempfile.TemporaryDirectory() as tmp:
        a = await incremental(make_url(tmp, "a"), Path(tmp), delivered, batch)
        b = await rebuilt(make_url(tmp, "b"), Path(tmp), events)
        try:
            return await snap(a), await snap(b)
        finally:
            await a.stop()
            await b.stop()


async def check(make_url, events: list[Envelope], seed: int) -> None:
    rnd = random.Random(seed)
    delivered, batch = deliveries(events, rnd), rnd.choice([1, 1, 3, 7])   # consumer batches
    got, want = await both(make_url, events, delivered, batch, snapshot)
    assert got["facts"] == oracle(events)
    assert got["counts"] == got["grouped"] and want["counts"] == want["grouped"]
    assert got == want


# Examples per property: fewer on PostgreSQL (``on_postgres``), where each creates databases.
SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
ON_SQLITE = settings(max_examples=25, deadline=None, suppress_health_check=SLOW)


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory) -> Path:
    """One migrated SQLite file; each example copies it (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("reports-template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


async def _migrate(url: str) -> None:
    rt = support.reports_runtime(Path(tempfile.gettempdir()), url)
    await upgrade(rt.db, rt.migrations)
    await rt.db.dispose()


def sqlite_urls(template: Path):
    def make(tmp: str, name: str) -> str:
        shutil.copy(template, f"{tmp}/{name}.db")
        return f"sqlite+aiosqlite:///{tmp}/{name}.db"
    return make


@ON_SQLITE
@given(events=histories(), seed=st.integers(0, 2**16))
def test_incremental_equals_rebuild_sqlite(sqlite_template, events, seed):
    asyncio.run(check(sqlite_urls(sqlite_template), events, seed))


def postgres_urls(postgres):  # noqa: ANN001, ANN201 - the fixture, and a URL factory
    """A fresh PostgreSQL database per example, each a copy of one migrated template."""
    template_url = postgres.create_database()
    asyncio.run(_migrate(template_url))
    template = template_url.rsplit("/", 1)[1]
    return lambda _tmp, _name: postgres.create_database(template=template)


def on_postgres(postgres, check_one, **strategies) -> None:  # noqa: ANN001
    """``check_one(make_url, **drawn)`` over a few examples, each on fresh PostgreSQL
    databases (fewer than on SQLite: each example creates two)."""
    urls = postgres_urls(postgres)

    @settings(max_examples=6, deadline=None, suppress_health_check=SLOW)
    @given(**strategies)
    def run(**drawn):
        asyncio.run(check_one(urls, **drawn))

    run()


def test_incremental_equals_rebuild_postgres(postgres):
    on_postgres(postgres, check, events=histories(), seed=st.integers(0, 2**16))


def test_a_closure_on_a_quarter_end_and_a_late_correction_example(sqlite_template):
    """One fixed history through the same check (a readable regression case)."""
    events = [site("1-1", "QJK", 1), site("1-2", "QHL", 1),
              stage("1-1", 5, date(2022, 5, 1)), stage("1-1", 6, date(2023, 2, 1)),
              stage("1-1", 3, date(2022, 8, 1), reported=datetime(2023, 7, 2, tzinfo=UTC)),
              site("1-2", "QHL", 3, closed=date(2022, 12, 31)),
              stage("1-2", 7, date(2022, 4, 1), programme="care-homes")]
    asyncio.run(check(sqlite_urls(sqlite_template), events, 7))




# --- activity, with withdrawn sets -----------------------------------------------------------
# Sets of a few residents at three registered sites, taken at instants on both sides of
# Europe/London quarter ends; each set's events carry any ICB (a site that moved, a stale copy
# in ingest), and a site may move (a SiteUpdated with another ICB, delivered before, between
# or after its activity): the views roll up by the register's final ICB whatever the events
# said.
# Each set is maybe scored (rejected, or a score with its values) and flagged, and maybe
# withdrawn (entered in error, or amended/corrected: a replacement set is recorded first);
# a withdrawn scored set also has its ScoreWithdrawn repeating that score's values.

ACTIVITY_SITES = {"1-1": "QJK", "1-2": "QHL", "1-3": "QUY"}   # QJK and QUY share PSC SW
RESIDENTS = ("p1_a", "p1_b", "p1_c")
TAKEN = {datetime(2022, 12, 31, 23, 30, tzinfo=UTC): "2022/23 Q3",   # GMT
         datetime(2023, 1, 1, 0, 30, tzinfo=UTC): "2022/23 Q4",
         datetime(2023, 3, 31, 22, 30, tzinfo=UTC): "2022/23 Q4",    # 23:30 BST
         datetime(2023, 3, 31, 23, 30, tzinfo=UTC): "2023/24 Q1",    # 00:30 BST, 1 April
         datetime(2023, 6, 30, 23, 30, tzinfo=UTC): "2023/24 Q2"}
ACTIVITY_QUARTERS = (ordinal(Quarter.parse("2022/23 Q3")), ordinal(Quarter.parse("2023/24 Q2")))
BANDS = ("low", "low-medium", "medium", "high")
SCORES = st.none() | st.just("rejected") | st.tuples(
    st.none() | st.integers(0, 12), st.sampled_from((None, *BANDS)), st.booleans(),
    st.booleans())   # (total, risk, red score, claim mismatch)
FATES = st.sampled_from([None, None, "entered-in-error", "amended", "corrected"])
MOVES = st.dictionaries(st.sampled_from(sorted(ACTIVITY_SITES)), st.sampled_from(sorted(AREAS)),
                        max_size=2)   # site -> the ICB a SiteUpdated moves it to


@st.composite
def observation_sets(draw, replacement: bool = False) -> dict:
    """A set; a replacement (the set an amendment records) stands."""
    site_id = draw(st.sampled_from(sorted(ACTIVITY_SITES)))
    scored = draw(SCORES)
    fate = None if replacement else draw(FATES)
    return {"resident": draw(st.sampled_from(RESIDENTS)), "site": site_id,
            "icb": draw(st.sampled_from(sorted(AREAS))),   # what its events say
            "taken": draw(st.sampled_from(sorted(TAKEN))),
            "score": scored, "flagged": isinstance(scored, tuple) and draw(st.booleans()),
            "fate": fate, "replacement": (draw(observation_sets(replacement=True))
                                          if fate in ("amended", "corrected") else None)}


def set_events(s: dict) -> tuple[list[Envelope], list[Envelope]]:
    """(what recording the set publishes, what withdrawing it publishes), each in publish
    order; the second is empty for a set that stands."""
    where = (s["site"], s["resident"], s["taken"])
    recorded = support.observation(*where, icb=s["icb"])
    out, scored, flagged = [recorded], None, None
    if s["score"] == "rejected":
        scored = support.score(*where, total=None, risk=None, rejected=True, icb=s["icb"],
                               of=recorded)
    elif s["score"] is not None:
        total, risk, red, mismatch = s["score"]
        scored = support.score(*where, total=total, risk=risk, red=red, mismatch=mismatch,
                               icb=s["icb"], of=recorded)
    if scored is not None:
        out.append(scored)
    if s["flagged"]:
        flagged = support.flag(*where, icb=s["icb"], of=recorded)
        out.append(flagged)
    if s["fate"] is None:
        return out, []
    replacement = s["replacement"] and set_events(s["replacement"])[0]
    reason = {"reason": s["fate"], "replaced_by": replacement and replacement[0]}
    withdrawn = [*(replacement or []), support.withdrawal(recorded, **reason)]
    if scored is not None:
        withdrawn.append(support.score_withdrawal(scored, flagged, **reason))
    return out, withdrawn


def activity_history(sets: list[dict], moves: dict[str, str],
                     rnd: random.Random) -> list[Envelope]:
    """The sites' registrations and moves, then every set's events in a publish order:
    recordings first, then withdrawals (each with its replacement's recording) in a random
    order."""
    recorded = [site(site_id, icb) for site_id, icb in ACTIVITY_SITES.items()]
    recorded += [updated(site_id, icb, 2) for site_id, icb in sorted(moves.items())]
    withdrawn = []
    for s in sets:
        first, then = set_events(s)
        recorded += first
        if then:
            withdrawn.append(then)
    rnd.shuffle(withdrawn)
    return recorded + [e for group in withdrawn for e in group]


def partitioned_deliveries(events: list[Envelope], rnd: random.Random) -> list[Envelope]:
    """Shuffled, but each (topic, resident) - one partition - in publish order, with
    redeliveries (a copy again later in its partition). Topics are ordered apart from each
    other, so a score may arrive before its observation, or a ScoreWithdrawn before the
    ObservationSetWithdrawn it follows."""
    queues: dict[tuple[str, str], list[Envelope]] = defaultdict(list)
    for e in events:
        queues[support.TOPIC_OF[e.type], e.subject].append(e)
    for queue in queues.values():
        for _ in range(len(queue) // 3):
            i = rnd.randrange(len(queue))
            queue.insert(rnd.randint(i + 1, len(queue)), queue[i])
    turns = [key for key, queue in queues.items() for _ in queue]
    rnd.shuffle(turns)
    each = {key: iter(queue) for key, queue in queues.items()}
    return [next(each[key]) for key in turns]


def standing_counts(sets: list[dict], moves: dict[str, str]) -> dict[tuple, tuple]:
    """The activity view in plain Python from the sets that stand: (level, qn, code) ->
    (observation sets, residents observed, scored, complete, low, low-medium, medium, high,
    red scores, flags, claim mismatches); a resident counts once per site where a set of
    theirs stands; a site counts under its ICB after the moves."""
    icb = {**ACTIVITY_SITES, **moves}
    psc = {site_id: AREAS[code][0] for site_id, code in icb.items()}
    standing = [s for s in sets if s["fate"] is None]
    standing += [s["replacement"] for s in sets if s["replacement"]]
    counts: dict[tuple, list] = {}
    residents: dict[tuple, set] = defaultdict(set)
    for s in standing:
        qn = ordinal(Quarter.parse(TAKEN[s["taken"]]))
        for level, code in (("national", NATIONAL), ("icb", icb[s["site"]]),
                            ("psc", psc[s["site"]]), ("site", s["site"])):
            n = counts.setdefault((level, qn, code), [0] * 11)
            residents[level, qn, code].add((s["site"], s["resident"]))
            n[0] += 1
            if isinstance(s["score"], tuple):
                total, risk, red, mismatch = s["score"]
                n[2] += 1
                n[3] += total is not None
                if risk is not None:
                    n[4 + BANDS.index(risk)] += 1
                n[8] += red
                n[10] += mismatch
            n[9] += s["flagged"]
    for key, n in counts.items():
        n[1] = len(residents[key])
    return {key: tuple(n) for key, n in counts.items()}


async def activity_snapshot(rt) -> dict:
    from services.reports.activity import ACT, AREA, RES, ROLLED

    out: dict = {}
    async with rt.db.session() as s:
        out["activity"] = sorted(tuple(r) for r in (await s.execute(select(ACT))).all())
        out["residents"] = sorted(tuple(r) for r in (await s.execute(select(RES))).all())
        # live roll-ups keep rows that netted to 0 (withdrawn, moved away); a rebuild sums
        out["areas"] = sorted(tuple(r) for r in (await s.execute(select(AREA))).all()
                              if any(r._mapping[c] for c in ROLLED))
        for level in ("national", "icb", "psc", "site"):
            out[level] = await activity_queries.activity(
                s, level=level, first=ACTIVITY_QUARTERS[0], last=ACTIVITY_QUARTERS[1],
                keep=None, code=None)
    return out


def viewed(snapshot: dict) -> dict[tuple, tuple]:
    """The query rows of a snapshot as ``standing_counts`` gives them."""
    return {(level, r["qn"], r["code"]): (
        r["observation_sets"], r["residents_observed"], r["complete_news2"]["denominator"],
        r["complete_news2"]["numerator"], *(r["risk"][band] for band in BANDS),
        r["red_scores"], r["flags"], r["claim_mismatches"])
        for level in ("national", "icb", "psc", "site") for r in snapshot[level]}


async def check_activity(make_url, sets: list[dict], moves: dict[str, str], seed: int) -> None:
    rnd = random.Random(seed)
    events = activity_history(sets, moves, rnd)
    delivered, batch = partitioned_deliveries(events, rnd), rnd.choice([1, 1, 3, 7])
    with tempfile.TemporaryDirectory() as tmp:
        a = support.reports_runtime(Path(tmp), make_url(tmp, "a"))
        b = support.reports_runtime(Path(tmp), make_url(tmp, "b"))
        try:
            await support.deliver(a, delivered, batch)
            horizon = Horizon.of(FIRST, lambda: AFTER)
            async with b.db.transaction() as s:   # duplicates too: the replay applies once
                await rebuild.replay(s, rebuild.canonical(delivered), horizon)
                await rebuild.derive_all(s, horizon)
            got, want = await activity_snapshot(a), await activity_snapshot(b)
        finally:
            await a.stop()
            await b.stop()
    assert viewed(got) == standing_counts(sets, moves)
    assert got == want


@ON_SQLITE
@given(sets=st.lists(observation_sets(), max_size=8), moves=MOVES, seed=st.integers(0, 2**16))
def test_activity_with_withdrawals_incremental_equals_rebuild_sqlite(sqlite_template, sets,
                                                                     moves, seed):
    asyncio.run(check_activity(sqlite_urls(sqlite_template), sets, moves, seed))


def test_activity_with_withdrawals_incremental_equals_rebuild_postgres(postgres):
    on_postgres(postgres, check_activity, sets=st.lists(observation_sets(), max_size=8),
                moves=MOVES, seed=st.integers(0, 2**16))


# --- activity per tool, with stage returns, moves and closures -------------------------------
# The register and stage returns of ``histories`` (tools NEWS2, Soft or none, two programmes)
# and observation sets at the registered sites, all delivered shuffled with duplicates (each
# partition in publish order) while the clock crosses into 2023/24 Q2, whose facts then
# appear under readings already counted. The per-tool roll-ups, kept as readings, returns,
# moves and closures arrive, must equal a rebuild's, and both must equal the site rows
# summed by hand under the tool their facts name.

TOOLS = ("NEWS2", "Soft")


def stands_at(s: dict, registered: set[str]) -> bool:
    """The set, and its replacement if any, are at registered sites (the codes of a site
    the register copy does not hold are its first-applied event's: order-dependent)."""
    return s["site"] in registered and (s["replacement"] is None
                                        or s["replacement"]["site"] in registered)


def summed_by_tool(snapshot: dict) -> dict[tuple, tuple]:
    """The site rows summed per (programme, tool, level, quarter, code), in plain Python,
    under the tool of the fact for their site and quarter; sums of 0 left out."""
    tool_of = {(f[0], f[2]): [] for f in snapshot["facts"]}
    for site_id, programme, qn, tool, *_ in snapshot["facts"]:
        if tool is not None:
            tool_of[site_id, qn].append((programme, tool))
    sums: dict[tuple, list] = {}
    for row in snapshot["activity"]:
        site_id, qn, icb, psc, *counts = row
        for programme, tool in tool_of.get((site_id, qn), ()):
            for level, code in (("national", NATIONAL), ("icb", icb), ("psc", psc)):
                total = sums.setdefault((programme, tool, level, qn, code), [0] * len(counts))
                total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    return {key: tuple(n) for key, n in sums.items() if any(n)}


async def tool_snapshot(rt) -> dict:
    from services.reports.activity import ACT, ROLLED, TOOL

    first, last = ordinal(Quarter.parse(FIRST)), ordinal(Quarter.of_instant(AFTER))
    out: dict = {}
    async with rt.db.session() as s:
        out["facts"] = sorted(tuple(r) for r in (await s.execute(select(FACT))).all())
        out["activity"] = sorted(tuple(r) for r in (await s.execute(select(ACT))).all())
        out["tools"] = {tuple(r[:5]): tuple(r[5:]) for r in (await s.execute(
            select(TOOL.c.programme, TOOL.c.tool, TOOL.c.level, TOOL.c.qn, TOOL.c.code,
                   *(TOOL.c[c] for c in ROLLED)))).all() if any(r[5:])}
        for programme in ("ch", "mh"):
            for tool in TOOLS:
                for level in ("national", "icb", "psc", "site"):
                    out[programme, tool, level] = await activity_queries.activity(
                        s, level=level, first=first, last=last, keep=None, code=None,
                        programme=programme, tool=tool)
        out["quality"] = await quality_lists(s)
    return out


# Data quality's site lists: kept as rows for the quarters with activity and the programmes
# with returns (``services.reports.quality``), joined from the facts and activity rows for
# the others; read both ways, in every scope a read can ask for, they must agree.
QUALITY_READS = (
    {}, {"area": ("icb", "QJK")}, {"area": ("psc", "SW")}, {"area": ("region", "Midlands")},
    {"tool": "NEWS2"}, {"keep_psc": {"WM"}}, {"page": activity_queries.Page(1, 1)},
)


async def quality_lists(s) -> dict:  # noqa: ANN001 - a session
    """The kept rows and counts, and every read of the lists, checked against the join."""
    from services.reports.quality import COUNTED, LISTED

    out = {"rows": sorted(tuple(r) for r in (await s.execute(select(LISTED))).all()),
           "counts": sorted(tuple(r) for r in (await s.execute(
               select(COUNTED).where(COUNTED.c.sites != 0))).all())}
    first, last = ACTIVITY_QUARTERS
    for programme in ("ch", "mh", "nobody"):
        for qn in range(first - 1, last + 1):   # and a quarter without activity
            for read in QUALITY_READS:
                args = {"programme": programme, "qn": qn, "keep_psc": None,
                        "checks": activity_queries.SITE_CHECKS, **read}
                kept = await activity_queries.quality(s, **args)
                assert kept == await activity_queries.quality(s, joined=True, **args), args
                out[programme, qn, repr(sorted(read.items()))] = kept
    return out


async def check_tools(make_url, events: list[Envelope], seed: int) -> None:
    rnd = random.Random(seed)
    delivered, batch = partitioned_deliveries(events, rnd), rnd.choice([1, 1, 3, 7])
    got, want = await both(make_url, events, delivered, batch, tool_snapshot)
    assert got["tools"] == summed_by_tool(got)
    assert got == want


@st.composite
def mixed(draw) -> list[Envelope]:
    events = draw(histories())
    registered = {e.data["site_id"] for e in events if e.type != "StageChanged"}
    for s in draw(st.lists(observation_sets(), max_size=8)):
        if stands_at(s, registered):
            recorded, withdrawn = set_events(s)
            events += recorded + withdrawn
    return events


@ON_SQLITE
@given(events=mixed(), seed=st.integers(0, 2**16))
def test_activity_per_tool_incremental_equals_rebuild_sqlite(sqlite_template, events, seed):
    asyncio.run(check_tools(sqlite_urls(sqlite_template), events, seed))


def test_activity_per_tool_incremental_equals_rebuild_postgres(postgres):
    on_postgres(postgres, check_tools, events=mixed(), seed=st.integers(0, 2**16))
