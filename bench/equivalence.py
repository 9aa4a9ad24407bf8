"""Old vs new ingest write path: the same requests must give the same answers, rows and events.

For hot-path rewrites (batch ingest): runs one seeded stream of native batch and single-set
requests, varied and mutated (out-of-range and oddly spelled values, bad and grouped NHS
numbers, local ids, Fahrenheit, soft signs, unknown, out-of-scope and closed sites, taken-at
outside the window, duplicate and conflicting platform set ids within and across batches,
replays, Idempotency-Keys reused with the same and with different content, malformed
bodies), through ingest from two code trees, each on a fresh database of one private
PostgreSQL, with set and event ids drawn from one seeded generator. It then compares every
response, every stored set, every outbox row (the envelope's ``time`` aside, the only value
taken from the wall clock) and every idempotency row, ids compared by where they first
appear (``_ids_by_appearance``), and exits 1 at the first difference.

    git archive main | (mkdir -p /tmp/old && tar -x -C /tmp/old)
    python -m bench.equivalence /tmp/old            # against this checkout
    python -m bench.equivalence /tmp/old /tmp/new   # or two trees

Each tree runs in its own process (its modules, this interpreter and its packages).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
BATCHES = 60


def main(argv: list[str], batches: int = BATCHES) -> int:
    if argv[:1] == ["child"]:
        _child(Path(argv[1]), argv[2], Path(argv[3]), int(argv[4]))
        return 0
    if not argv or len(argv) > 2:
        print(__doc__)
        return 2
    trees = [Path(argv[0]).resolve(), Path(argv[1] if len(argv) > 1 else ROOT).resolve()]
    sys.path.insert(0, str(ROOT))
    from tests.infra.postgres import start_postgres

    pg = start_postgres()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            docs = []
            for n, tree in enumerate(trees):
                out = Path(tmp) / f"run-{n}.json"
                subprocess.run([sys.executable, str(HERE), "child", str(tree),
                                pg.create_database(), str(out), str(batches)],
                               check=True, cwd=tree)
                docs.append(json.loads(out.read_text()))
    finally:
        pg.stop()
    docs = [_ids_by_appearance(doc) for doc in docs]
    for part in PARTS:
        old, new = docs[0][part], docs[1][part]
        if old != new:
            first = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                         min(len(old), len(new)))
            print(f"DIFFERENT {part}: {len(old)} vs {len(new)}; first difference at {first}:\n"
                  f"  old {_at(old, first)}\n  new {_at(new, first)}")
            return 1
    counts = {k: len(v) for k, v in docs[0].items()}
    print(f"IDENTICAL ({counts}; outcomes {docs[0]['outcomes']})")
    return 0


PARTS = ("responses", "sets", "outbox", "idempotency")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _ids_by_appearance(doc: dict[str, Any]) -> dict[str, Any]:
    """Every id renamed ``id-<n>`` by where it first appears (parts in ``PARTS`` order).

    Both trees draw ids from one seeded generator, but the ORDER in which a tree draws them
    is not behaviour (the one-statement flush encodes an event for a set that then proves a
    duplicate, and discards it): the same answers, rows and events name the same ids at the
    same places, whatever their values.
    """
    names: dict[str, str] = {}

    def name(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"id-{len(names)}")
    text = json.dumps([doc[part] for part in PARTS], default=str)
    renamed = dict(zip(PARTS, json.loads(UUID_TEXT.sub(name, text)), strict=True))
    # The stored sets come ordered by id: by their new names, since the values differ.
    renamed["sets"].sort(key=lambda row: int(row["id"].removeprefix("id-")))
    return {**doc, **renamed}


def _at(items: list[Any], i: int) -> str:
    return json.dumps(items[i], default=str)[:2000] if i < len(items) else "(none)"


def _child(tree: Path, database_url: str, out: Path, batches: int) -> None:
    """One tree's run (a process of its own, so it imports that tree's modules)."""
    sys.path[:] = [str(tree)] + [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
    ids = random.Random(1234)
    uuid.uuid4 = lambda: uuid.UUID(int=ids.getrandbits(128), version=4)  # set and event ids
    import services.ingest.api as api

    if not Path(api.__file__).resolve().is_relative_to(tree):
        raise RuntimeError(f"{tree} is not the tree imported: {api.__file__}")
    doc = asyncio.run(_drive(database_url, batches))
    out.write_text(json.dumps(doc, default=str, sort_keys=True))


async def _drive(database_url: str, batches: int) -> dict[str, Any]:
    from datetime import date

    from sqlalchemy import text

    from tests.integration.ingest.conftest import HOME, OTHER, bearer, running

    closed = "1-2000000002"
    results: list[tuple[int, Any]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        async with running(database_url=database_url, data_dir=data_dir) as ingest:
            await ingest.site(OTHER, icb="QHL", psc="WM")            # outside the token's PSC
            await ingest.site(closed, closed_on=date(2026, 11, 1))  # closed before NOW
            platform = bearer(sites=[HOME, closed])
            rnd, last_items = random.Random(99), None
            for b in range(batches):
                items = _items(rnd, b, closed)
                if last_items and rnd.random() < 0.1:  # a replay: duplicates, or 409s
                    items = last_items
                headers = dict(platform)
                if rnd.random() < 0.2:
                    headers["Idempotency-Key"] = f"key-{rnd.randrange(8)}"
                body: Any = {"items": items}
                if rnd.random() < 0.04:
                    body = rnd.choice([{"items": []}, {"items": items, "x": 1}, {"nope": 1}])
                r = await ingest.client.post("/observation-sets/batch", json=body,
                                             headers=headers)
                results.append((r.status_code, r.json()))
                if rnd.random() < 0.2:  # single sets share the intake (group commit)
                    r = await ingest.client.post("/observation-sets", json=items[0],
                                                 headers=platform)
                    results.append((r.status_code, r.json()))
                last_items = items
            async with ingest.runtime.db.engine.connect() as c:
                async def rows(sql: str) -> list[dict[str, Any]]:
                    return [dict(x._mapping) for x in (await c.execute(text(sql))).all()]
                sets = await rows("SELECT * FROM ingest_observation_set ORDER BY id")
                outbox = await rows("SELECT seq, event_id, event_type, topic, key, payload, "
                                    "attempts FROM outbox ORDER BY seq")
                idem = await rows("SELECT caller, key, request_hash, status, response "
                                  "FROM ingest_idempotency ORDER BY caller, key")
    for row in outbox:
        row["payload"] = json.loads(row["payload"])
        row["payload"].pop("time")     # the envelope's time is the wall clock's
    outcomes: dict[str, int] = {}
    for _, answer in results:
        for item in answer.get("results", []) if isinstance(answer, dict) else []:
            outcomes[item["outcome"]] = outcomes.get(item["outcome"], 0) + 1
    return {"responses": results, "sets": sets, "outbox": outbox, "idempotency": idem,
            "outcomes": outcomes}


BASE = {"site_id": "1-5868490225", "respiration_rate": 18, "spo2": 97, "on_oxygen": False,
        "systolic_bp": 128, "consciousness": "A", "temperature": "36.55",
        "soft_signs": ["R2-EATING"], "client_news2_total": 0}


def _items(rnd: random.Random, b: int, closed: str) -> list[dict[str, Any]]:
    out = []
    for k in range(rnd.choice([1, 3, 20, 200, 1000])):
        item = {**BASE, "nhs_number": _nhs(b * 1000 + k) or "9434765919",
                "platform_set_id": f"b{b}-{k}", "pulse": 40 + (b * 7 + k) % 150,
                "taken_at": f"2026-11-22T{10 + k % 2}:{k % 60:02d}:{b % 60:02d}Z"}
        while rnd.random() < 0.25:
            _mutate(rnd, item, closed)
        out.append(item)
    return out


def _nhs(n: int) -> str | None:
    nine = f"{n % 10**9:09d}"
    check = 11 - sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True)) % 11
    return None if check == 10 else nine + str(0 if check == 11 else check)


def _mutate(rnd: random.Random, item: dict[str, Any], closed: str) -> None:  # noqa: C901
    from tests.integration.ingest.conftest import OTHER

    m = rnd.randrange(40)  # 19 kinds of change; most draws change nothing
    if m == 0:
        item["spo2"] = rnd.choice([101, 101.0, 1e2, 39, -0.0, "97", 100.5, 1e1])
    elif m == 1:
        item["temperature"] = rnd.choice([98.6, 104, 50, "37.0", 37.0, 36.123456, 36.1234567])
        item["temperature_unit"] = rnd.choice("CF")
    elif m == 2:
        item.pop(rnd.choice(list(item)))
    elif m == 3:
        item["extra_field"] = 1
    elif m == 4:
        item["nhs_number"] = rnd.choice(["9434765918", "943 476 5919", "943-476-5919",
                                         9434765919, "1111111111", "94347659", "abc",
                                         "943 476-5919", "\x00"])
    elif m == 5:
        item.pop("nhs_number", None)
        item["local_id"] = f"R-{rnd.randrange(50)}"
    elif m == 6:
        item["soft_signs"] = rnd.choice([["R2-BREATH", "R2-EATING", "R2-EATING"], ["NOPE"], [],
                                         ["R2-PAIN", ""]])
    elif m == 7:
        item["site_id"] = rnd.choice(["1-404", OTHER, closed, "bad site"])
    elif m == 8:
        item["taken_at"] = rnd.choice(["2026-11-22T12:06:00Z", "2026-10-01T00:00:00Z",
                                       "2026-11-22T11:30:00", "2026-11-22T11:30:00+01:00",
                                       "not a date"])
    elif m == 9:
        item["platform_set_id"] = None
    elif m == 10:
        item["source_platform"] = rnd.choice(["carehq", "other"])
    elif m == 11:
        item["recorder"] = rnd.choice(["  Nurse Ödön ", "x" * 201, "a\x00b", "Dr \U0001F600"])
    elif m == 12:
        item["consciousness"] = rnd.choice(["C", "X", None, "a"])
    elif m == 13:
        item["client_news2_total"] = rnd.choice([21, -1, 5.0, "3", True])
    elif m == 14:
        item["spo2_scale_claim"] = rnd.choice([1, 2, 3, 1.0])
    elif m == 15:
        item["pulse"] = rnd.choice([None, 0, 250, 251, "seventy"])
    elif m == 16:
        item["platform_set_id"] = f"dup-{rnd.randrange(30)}"  # duplicate, or 409 if different
    elif m == 17:
        item["on_oxygen"] = rnd.choice(["yes", 1, None, True])
    elif m == 18:
        for name in ("respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse",
                     "consciousness", "temperature", "soft_signs"):
            item.pop(name, None)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
